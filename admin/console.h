// The operator console: a single page (admin/console/, embedded in the binary at build time by
// cmake/embed_assets.cmake) served by the admin port at "/" and "/console/*". It reads the same
// JSON API the CLI uses and loads nothing from elsewhere (a strict Content-Security-Policy says
// so to the browser).
#pragma once

#include <optional>
#include <span>
#include <string_view>

#include "admin/http.h"

namespace pgphase::admin {

struct EmbeddedAsset {
  std::string_view url;   // "/" or "/console/<file>"
  std::string_view file;  // the file's name, e.g. "console.js"
  std::string_view bytes;
};

// Every embedded asset (generated source).
[[nodiscard]] std::span<const EmbeddedAsset> embedded_assets();

// The console's answer to a request for one of its paths; nullopt for any other path.
[[nodiscard]] std::optional<HttpResponse> serve_console(const HttpRequest& request,
                                                        std::string_view path);

}  // namespace pgphase::admin
