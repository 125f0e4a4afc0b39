// What every recipe uses to check its outcome: expect() fails the recipe with a reason, and
// run_recipe() turns a failure into a message on stderr and exit status 1.
#pragma once

#include <exception>
#include <iostream>
#include <stdexcept>
#include <string>

namespace recipe_check {

struct Failed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline void expect(bool condition, const std::string& what) {
  if (!condition) throw Failed(what);
}

// Runs `run` (which returns the exit status), reporting a failed expectation or an
// exception as `<name>: FAILED ...`.
template <class F>
int run_recipe(const char* name, F&& run) {
  try {
    return run();
  } catch (const Failed& f) {
    std::cerr << name << ": FAILED: " << f.what() << "\n";
  } catch (const std::exception& e) {
    std::cerr << name << ": FAILED with an exception: " << e.what() << "\n";
  }
  return 1;
}

}  // namespace recipe_check
