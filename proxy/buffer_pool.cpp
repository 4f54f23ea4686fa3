#include "proxy/buffer_pool.h"

namespace pgphase::proxy {

BufferPool& BufferPool::local() {
  thread_local BufferPool pool;
  return pool;
}

BufferPool::Buffer BufferPool::acquire() {
  if (!free_.empty()) {
    uint8_t* p = free_.back();
    free_.pop_back();
    return Buffer(p);
  }
  return Buffer(std::make_unique_for_overwrite<uint8_t[]>(kBufferSize).release());
}

void BufferPool::Returner::operator()(uint8_t* p) const noexcept {
  local().release(p);
}

void BufferPool::release(uint8_t* p) noexcept {
  if (free_.size() < kMaxCached) {
    free_.push_back(p);
    return;
  }
  std::unique_ptr<uint8_t[]> discard(p);
}

BufferPool::~BufferPool() {
  for (uint8_t* p : free_) std::unique_ptr<uint8_t[]> discard(p);
}

}  // namespace pgphase::proxy
