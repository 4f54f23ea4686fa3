// Sends one email over SMTP (RFC 5321): EHLO, STARTTLS through OpenSSL when required (the
// server's certificate verified against the system's CA store), AUTH PLAIN when a user is given,
// MAIL/RCPT/DATA with dot-stuffing, QUIT. Synchronous, bounded by a timeout per step.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace pgphase::alerting::smtp {

struct Mail {
  std::string server;
  int port = 587;
  bool starttls = true;  // required: refuse to send when the server does not offer it
  std::string username;  // "" = no AUTH
  std::string password;
  std::string from;
  std::vector<std::string> to;
  std::string subject;
  std::string body;
  std::chrono::seconds timeout{10};
};

// "" when the server accepted the message, else why not (the server's reply or the I/O error).
[[nodiscard]] std::string send(const Mail& m);

}  // namespace pgphase::alerting::smtp
