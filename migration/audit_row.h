// One change request to the admin API, as t_sys_audit_log keeps it.
#pragma once

#include <string>

namespace pgphase::migration {

struct AuditRow {
  std::string actor;
  std::string role;  // "operator" | "viewer" | "none": the role of the request's token
  std::string method;
  std::string path;
  int status = 0;  // the HTTP status it was answered with
};

}  // namespace pgphase::migration
