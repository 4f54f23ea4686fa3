// Building admin API responses: JSON bodies through Boost.JSON, errors as
// {"error": "...", "detail": "..."} with the matching status.
#pragma once

#include <string_view>

#include "admin/http.h"

namespace pgphase::admin {

[[nodiscard]] HttpResponse json_error(unsigned status, std::string_view error,
                                      std::string_view detail);
[[nodiscard]] HttpResponse text_response(unsigned status, std::string body,
                                         std::string content_type = "text/plain");

}  // namespace pgphase::admin
