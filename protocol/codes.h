// Message type bytes and magic numbers of the PostgreSQL v3 wire protocol.
// Source: PostgreSQL 15 docs, "Message Formats" (protocol-message-formats.html) and
// src/include/libpq/protocol.h / pqcomm.h in the PostgreSQL tree.
#pragma once

#include <cstdint>

namespace pgphase::protocol {

// Frontend (client -> server) message types.
namespace fe {
inline constexpr char kBind = 'B';
inline constexpr char kClose = 'C';
inline constexpr char kDescribe = 'D';
inline constexpr char kExecute = 'E';
inline constexpr char kFunctionCall = 'F';
inline constexpr char kFlush = 'H';
inline constexpr char kParse = 'P';
inline constexpr char kQuery = 'Q';
inline constexpr char kSync = 'S';
inline constexpr char kTerminate = 'X';
inline constexpr char kCopyData = 'd';
inline constexpr char kCopyDone = 'c';
inline constexpr char kCopyFail = 'f';
// PasswordMessage, SASLInitialResponse, SASLResponse and GSSResponse share 'p'.
inline constexpr char kPassword = 'p';
}  // namespace fe

// Backend (server -> client) message types.
namespace be {
inline constexpr char kParseComplete = '1';
inline constexpr char kBindComplete = '2';
inline constexpr char kCloseComplete = '3';
inline constexpr char kNotificationResponse = 'A';
inline constexpr char kCommandComplete = 'C';
inline constexpr char kDataRow = 'D';
inline constexpr char kErrorResponse = 'E';
inline constexpr char kCopyInResponse = 'G';
inline constexpr char kCopyOutResponse = 'H';
inline constexpr char kEmptyQueryResponse = 'I';
inline constexpr char kBackendKeyData = 'K';
inline constexpr char kNoticeResponse = 'N';
inline constexpr char kAuthentication = 'R';
inline constexpr char kParameterStatus = 'S';
inline constexpr char kRowDescription = 'T';
inline constexpr char kFunctionCallResponse = 'V';
inline constexpr char kCopyBothResponse = 'W';
inline constexpr char kReadyForQuery = 'Z';
inline constexpr char kNoData = 'n';
inline constexpr char kPortalSuspended = 's';
inline constexpr char kParameterDescription = 't';
inline constexpr char kNegotiateProtocolVersion = 'v';
inline constexpr char kCopyData = 'd';
inline constexpr char kCopyDone = 'c';
}  // namespace be

// Authentication request codes carried in 'R' messages (docs: AuthenticationOk ... SASLFinal).
namespace auth {
inline constexpr int32_t kOk = 0;
inline constexpr int32_t kKerberosV5 = 2;
inline constexpr int32_t kCleartextPassword = 3;
inline constexpr int32_t kMD5Password = 5;
inline constexpr int32_t kGSS = 7;
inline constexpr int32_t kGSSContinue = 8;
inline constexpr int32_t kSSPI = 9;
inline constexpr int32_t kSASL = 10;
inline constexpr int32_t kSASLContinue = 11;
inline constexpr int32_t kSASLFinal = 12;
}  // namespace auth

// Request codes in the first packet of a connection (pqcomm.h: PG_PROTOCOL(1234, 5678) etc.).
inline constexpr int32_t kProtocolV3 = 196608;           // PG_PROTOCOL(3, 0)
inline constexpr int32_t kCancelRequestCode = 80877102;  // PG_PROTOCOL(1234, 5678)
inline constexpr int32_t kSSLRequestCode = 80877103;     // PG_PROTOCOL(1234, 5679)
inline constexpr int32_t kGSSENCRequestCode = 80877104;  // PG_PROTOCOL(1234, 5680)

// The server refuses startup packets longer than MAX_STARTUP_PACKET_LENGTH (10000, pqcomm.h).
inline constexpr uint32_t kMaxStartupPacketLength = 10000;
// Every message length counts its own four bytes, so anything under 4 is malformed.
inline constexpr uint32_t kMinMessageLength = 4;
// PostgreSQL's own cap for most messages is PQ_LARGE_MESSAGE_LIMIT (MaxAllocSize - 1, ~1 GiB).
inline constexpr uint32_t kDefaultMaxMessageLength = 1u << 30;

// Transaction status in ReadyForQuery.
inline constexpr char kTxIdle = 'I';
inline constexpr char kTxInBlock = 'T';
inline constexpr char kTxFailed = 'E';

// SQLSTATE codes pgphase itself raises (Appendix A, "PostgreSQL Error Codes").
namespace sqlstate {
inline constexpr const char* kProtocolViolation = "08P01";
inline constexpr const char* kConnectionFailure = "08006";
inline constexpr const char* kConnectionException = "08000";
inline constexpr const char* kAdminShutdown = "57P01";
inline constexpr const char* kCannotConnectNow = "57P03";
inline constexpr const char* kFeatureNotSupported = "0A000";
inline constexpr const char* kTooManyConnections = "53300";
inline constexpr const char* kInternalError = "XX000";
inline constexpr const char* kQueryCanceled = "57014";
inline constexpr const char* kIdleSessionTimeout = "57P05";
}  // namespace sqlstate

}  // namespace pgphase::protocol
