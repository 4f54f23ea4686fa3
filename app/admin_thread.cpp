#include "app/admin_thread.h"

#include <boost/asio/post.hpp>

namespace pgphase::app {

AdminThread::AdminThread(const proxy::Endpoint& at, admin::HttpHandler handler,
                         admin::HttpServerOptions options)
    : server_(std::make_unique<admin::HttpServer>(ctx_, at.host, at.port, std::move(handler),
                                                  std::move(options))),
      port_(server_->port()),
      thread_([this] { ctx_.run(); }) {}

AdminThread::~AdminThread() {
  stop();
}

void AdminThread::stop() {
  if (thread_.joinable()) {
    boost::asio::post(ctx_, [this] {
      server_->stop();
      ctx_.stop();
    });
    thread_.join();
  }
  server_.reset();  // joins handlers still running on the pool while ctx_ still exists
}

}  // namespace pgphase::app
