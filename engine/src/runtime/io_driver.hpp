// What the scheduler needs from the sockets' poller to poll on its workers (see
// Scheduler::attach_io): the epoll set to wait on, and how to handle what a wait returned.
#pragma once

#include <sys/epoll.h>

namespace coppice::detail {

class IoDriver {
 public:
  virtual int epoll_fd() const = 0;
  // Handles `n` events of one epoll_wait on epoll_fd(). Called with the scheduler's I/O lock
  // held (one batch at a time, so a batch is the poller's epoch: see net/poller.cpp), on a
  // worker that is online and off the sleepers' list: what it delivers runs on this worker.
  virtual void handle(const epoll_event* events, int n) = 0;

 protected:
  ~IoDriver() = default;
};

}  // namespace coppice::detail
