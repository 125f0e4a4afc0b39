// A small open-addressing map from 64-bit keys (pids, refs) to 64-bit values, for links,
// monitors and aliases: no node per entry, and no allocation at all while it is empty.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <new>
#include <utility>

namespace coppice::detail {

// Key 0 is never stored (Pid{} and Ref{} name nothing); ~0 marks a deleted slot.
class FlatMap {
 public:
  FlatMap() = default;
  FlatMap(const FlatMap&) = delete;
  FlatMap& operator=(const FlatMap&) = delete;
  ~FlatMap() { std::free(slots_); }

  std::uint32_t size() const { return size_; }
  std::size_t bytes() const { return std::size_t{capacity_} * 16; }  // the table's memory (16 B a slot)
  bool empty() const { return size_ == 0; }

  bool contains(std::uint64_t key) const { return find(key) != nullptr; }
  const std::uint64_t* find(std::uint64_t key) const {
    if (capacity_ == 0 || !storable(key)) return nullptr;
    for (std::uint32_t i = index(key);; i = (i + 1) & (capacity_ - 1)) {
      if (slots_[i].key == key) return &slots_[i].value;
      if (slots_[i].key == empty_key) return nullptr;
    }
  }
  // Inserts or overwrites; true if the key was new.
  bool insert(std::uint64_t key, std::uint64_t value) {
    if (!storable(key)) return false;
    if ((size_ + deleted_ + 1) * 4 > capacity_ * 3) grow();
    std::uint32_t i = index(key);
    Slot* tomb = nullptr;
    for (;; i = (i + 1) & (capacity_ - 1)) {
      if (slots_[i].key == key) {
        slots_[i].value = value;
        return false;
      }
      if (slots_[i].key == deleted_key && tomb == nullptr) tomb = &slots_[i];
      if (slots_[i].key == empty_key) break;
    }
    Slot* s = tomb ? tomb : &slots_[i];
    if (tomb) --deleted_;
    s->key = key;
    s->value = value;
    ++size_;
    return true;
  }
  // Removes the key; true if it was there (its value in *value).
  bool erase(std::uint64_t key, std::uint64_t* value = nullptr) {
    if (capacity_ == 0 || !storable(key)) return false;
    for (std::uint32_t i = index(key);; i = (i + 1) & (capacity_ - 1)) {
      if (slots_[i].key == key) {
        if (value) *value = slots_[i].value;
        slots_[i].key = deleted_key;
        --size_;
        ++deleted_;
        return true;
      }
      if (slots_[i].key == empty_key) return false;
    }
  }
  template <class F>
  void for_each(F&& f) const {
    for (std::uint32_t i = 0; i < capacity_; ++i)
      if (slots_[i].key != empty_key && slots_[i].key != deleted_key) f(slots_[i].key, slots_[i].value);
  }

 private:
  static constexpr std::uint64_t empty_key = 0;
  static constexpr std::uint64_t deleted_key = ~std::uint64_t{0};
  static bool storable(std::uint64_t key) { return key != empty_key && key != deleted_key; }
  struct Slot {
    std::uint64_t key;
    std::uint64_t value;
  };
  std::uint32_t index(std::uint64_t key) const {
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return static_cast<std::uint32_t>(key) & (capacity_ - 1);
  }
  void grow() {
    std::uint32_t old_capacity = capacity_;
    Slot* old = slots_;
    capacity_ = size_ * 2 + 2 > 4 ? 1u << (32 - __builtin_clz(size_ * 2 + 2)) : 4;
    slots_ = static_cast<Slot*>(std::calloc(capacity_, sizeof(Slot)));
    if (slots_ == nullptr) {
      // Out of memory: the process whose bookkeeping grew crashes (the turn catches it).
      slots_ = old;
      capacity_ = old_capacity;
      throw std::bad_alloc();
    }
    size_ = 0;
    deleted_ = 0;
    for (std::uint32_t i = 0; i < old_capacity; ++i)
      if (old[i].key != empty_key && old[i].key != deleted_key) insert(old[i].key, old[i].value);
    std::free(old);
  }

  Slot* slots_ = nullptr;
  std::uint32_t capacity_ = 0;
  std::uint32_t size_ = 0;
  std::uint32_t deleted_ = 0;
};

}  // namespace coppice::detail
