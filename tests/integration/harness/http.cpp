#include "harness/http.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <stdexcept>

#include "harness/raw_client.h"
#include "harness/util.h"

namespace pgphase::it {
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string dechunk(std::string_view body) {
  std::string out;
  while (true) {
    const size_t eol = body.find("\r\n");
    if (eol == std::string_view::npos) throw std::runtime_error("bad chunked body");
    const size_t size = std::strtoul(std::string(body.substr(0, eol)).c_str(), nullptr, 16);
    body.remove_prefix(eol + 2);
    if (size == 0) return out;
    if (body.size() < size + 2) throw std::runtime_error("truncated chunked body");
    out.append(body.substr(0, size));
    body.remove_prefix(size + 2);
  }
}

double parse_value(const std::string& text, std::string_view line) {
  if (text == "+Inf" || text == "Inf") return INFINITY;
  if (text == "-Inf") return -INFINITY;
  if (text == "NaN") return NAN;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0') {
    throw std::runtime_error("bad metric value '" + text + "' in line: " + std::string(line));
  }
  return v;
}

bool name_char(char c, bool first) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':' ||
         (!first && std::isdigit(static_cast<unsigned char>(c)));
}

MetricSample parse_sample(std::string_view line) {
  const auto fail = [&](const char* why) {
    return std::runtime_error(std::string("bad metric line (") + why + "): " + std::string(line));
  };
  MetricSample s;
  size_t pos = 0;
  while (pos < line.size() && name_char(line[pos], pos == 0)) ++pos;
  if (pos == 0) throw fail("no name");
  s.name = std::string(line.substr(0, pos));
  if (pos < line.size() && line[pos] == '{') {
    ++pos;
    while (pos < line.size() && line[pos] != '}') {
      const size_t eq = line.find('=', pos);
      if (eq == std::string_view::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
        throw fail("label without =\"");
      }
      const std::string key(line.substr(pos, eq - pos));
      std::string value;
      pos = eq + 2;
      while (pos < line.size() && line[pos] != '"') {
        if (line[pos] == '\\' && pos + 1 < line.size()) {
          ++pos;
          value += line[pos] == 'n' ? '\n' : line[pos];
        } else {
          value += line[pos];
        }
        ++pos;
      }
      if (pos >= line.size()) throw fail("unterminated label value");
      s.labels[key] = value;
      ++pos;  // closing quote
      if (pos < line.size() && line[pos] == ',') ++pos;
    }
    if (pos >= line.size()) throw fail("unterminated label set");
    ++pos;  // '}'
  }
  if (pos >= line.size() || line[pos] != ' ') throw fail("no value");
  std::string rest = trim(line.substr(pos));
  const size_t space = rest.find(' ');  // optional timestamp
  s.value = parse_value(rest.substr(0, space), line);
  return s;
}

// True once `raw` holds the whole response (Content-Length or a final chunk), so a server that
// keeps the connection open despite "Connection: close" does not stall the test.
bool response_complete(const std::string& raw) {
  const size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos) return false;
  const std::string head = lower(raw.substr(0, head_end));
  const size_t cl = head.find("\r\ncontent-length:");
  if (cl != std::string::npos) {
    return raw.size() - head_end - 4 >= std::strtoul(head.c_str() + cl + 17, nullptr, 10);
  }
  if (head.find("chunked") != std::string::npos) return raw.ends_with("\r\n0\r\n\r\n");
  return false;
}

}  // namespace

HttpResponse http_request(uint16_t port, std::string_view method, std::string_view path,
                          const HttpHeaders& headers, std::string_view body,
                          std::chrono::milliseconds timeout, const std::string& host) {
  RawClient c = RawClient::tcp(port, host);
  std::string req = std::string(method) + " " + std::string(path) + " HTTP/1.1\r\nHost: " + host +
                    ":" + std::to_string(port) +
                    "\r\nUser-Agent: pgphase-tests\r\nAccept: */*\r\nConnection: close\r\n";
  for (const auto& [name, value] : headers) req += name + ": " + value + "\r\n";
  if (!body.empty() || method == "POST" || method == "PUT") {
    req +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n";
  req += body;
  c.send(req);
  std::string raw;
  const auto deadline = Clock::now() + timeout;
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    const std::string chunk = c.read_some(std::max(left, std::chrono::milliseconds(1)));
    if (chunk.empty()) break;
    raw += chunk;
    if (response_complete(raw)) break;
  }
  const size_t head_end = raw.find("\r\n\r\n");
  if (!raw.starts_with("HTTP/1.") || head_end == std::string::npos) {
    throw std::runtime_error("not an HTTP response: " + raw.substr(0, 200));
  }
  HttpResponse r;
  r.status = std::atoi(raw.c_str() + 9);
  size_t pos = raw.find("\r\n") + 2;
  while (pos < head_end) {
    const size_t eol = raw.find("\r\n", pos);
    const std::string line = raw.substr(pos, eol - pos);
    const size_t colon = line.find(':');
    if (colon != std::string::npos)
      r.headers[lower(line.substr(0, colon))] = trim(line.substr(colon + 1));
    pos = eol + 2;
  }
  r.body = raw.substr(head_end + 4);
  if (lower(r.headers["transfer-encoding"]) == "chunked") r.body = dechunk(r.body);
  return r;
}

HttpResponse http_get(uint16_t port, std::string_view path, const std::string& host,
                      std::chrono::milliseconds timeout) {
  return http_request(port, "GET", path, {}, {}, timeout, host);
}

Metrics Metrics::parse(std::string_view text) {
  Metrics m;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    const std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (trim(line).empty()) continue;
    if (line.starts_with("# TYPE ")) {
      const std::string rest(line.substr(7));
      const size_t space = rest.find(' ');
      if (space == std::string::npos) throw std::runtime_error("bad TYPE line: " + rest);
      m.types[rest.substr(0, space)] = rest.substr(space + 1);
      continue;
    }
    if (line.starts_with('#')) continue;
    m.samples.push_back(parse_sample(line));
  }
  return m;
}

std::optional<double> Metrics::value(std::string_view name,
                                     const std::map<std::string, std::string>& labels) const {
  std::optional<double> sum;
  for (const auto& s : samples) {
    if (s.name != name) continue;
    bool match = true;
    for (const auto& [k, v] : labels) {
      const auto it = s.labels.find(k);
      match = match && it != s.labels.end() && it->second == v;
    }
    if (match) sum = sum.value_or(0) + s.value;
  }
  return sum;
}

std::vector<MetricSample> Metrics::all(std::string_view name) const {
  std::vector<MetricSample> out;
  for (const auto& s : samples) {
    if (s.name == name) out.push_back(s);
  }
  return out;
}

Metrics scrape_metrics(uint16_t admin_port) {
  const HttpResponse r = http_get(admin_port, "/metrics");
  if (r.status != 200) {
    throw std::runtime_error("GET /metrics returned " + std::to_string(r.status) + ": " + r.body);
  }
  return Metrics::parse(r.body);
}

}  // namespace pgphase::it
