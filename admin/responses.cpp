#include "admin/responses.h"

#include <boost/json.hpp>

namespace pgphase::admin {

HttpResponse json_error(unsigned status, std::string_view error, std::string_view detail) {
  boost::json::object o;
  o["error"] = error;
  o["detail"] = detail;
  return {status, "application/json", boost::json::serialize(o)};
}

HttpResponse text_response(unsigned status, std::string body, std::string content_type) {
  return {status, std::move(content_type), std::move(body)};
}

}  // namespace pgphase::admin
