// The signed audit report: an in-toto Statement v1 over every file of a run's output directory,
// in a DSSE v1 envelope signed with Ed25519 (OpenSSL EVP), so that anyone holding the public key
// can check it, with airlock or with the openssl CLI alone (docs/gate.md).
#pragma once

#include "util/result.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace airlock::audit {

inline constexpr std::string_view k_dsse_payload_type = "application/vnd.in-toto+json";
inline constexpr std::string_view k_statement_type = "https://in-toto.io/Statement/v1";
inline constexpr std::string_view k_predicate_type = "https://airlock.dev/attestations/run/v0.1";
inline constexpr std::string_view k_envelope_file = "report.dsse.json";

// DSSE v1 pre-authentication encoding: "DSSEv1 LEN(type) type LEN(body) body", lengths in ASCII
// decimal, single spaces. This is what the signature covers.
std::string pae(std::string_view payload_type, std::string_view payload);

std::string base64_encode(std::string_view bytes);
// Standard alphabet with padding; nullopt for anything else (whitespace included).
std::optional<std::string> base64_decode(std::string_view text);

struct KeyPair {
    std::filesystem::path private_key; // PREFIX.key, PKCS#8 PEM, mode 0600
    std::filesystem::path public_key;  // PREFIX.pub, SubjectPublicKeyInfo PEM
};
// Writes a fresh Ed25519 key pair; refuses (conflict) when either file exists.
util::Result<KeyPair> keygen(const std::string& prefix);

// SHA-256 (hex) of the DER SubjectPublicKeyInfo of an Ed25519 public key in PEM: the envelope's
// keyid. An error when `pem` is not such a key (`name` is used in the message, never the bytes).
util::Result<std::string> public_key_id(std::string_view pem, const std::string& name);

// Ed25519 signature of `message` with the private key in `pem`, and the signer's keyid.
struct Signature {
    std::string keyid;
    std::string sig; // 64 raw bytes
};
util::Result<Signature> sign_bytes(std::string_view private_pem, const std::string& name,
                                   std::string_view message);

// Subjects of a statement: every regular file under `out` but the envelope, by relative path
// ('/' separators, sorted bytewise), with its SHA-256. A symlink or any other non-regular entry
// is an error (refused), so the signature covers everything the directory holds.
util::Result<nlohmann::json> output_subjects(const std::filesystem::path& out);

// The in-toto Statement v1 for a run: `subjects` as above, the predicate taken from `report`.
nlohmann::json run_statement(const nlohmann::json& report, const nlohmann::json& subjects);

// The envelope JSON (one line) around `statement_bytes`, signed with the key in `private_pem`.
util::Result<std::string> make_envelope(std::string_view statement_bytes,
                                        std::string_view private_pem, const std::string& name);
// The same for any payload type (approvals use their own).
util::Result<std::string> make_typed_envelope(std::string_view payload_type,
                                              std::string_view payload,
                                              std::string_view private_pem,
                                              const std::string& name);

// An envelope read but not yet verified: its payload and the keyids its signatures name.
struct OpenedEnvelope {
    std::string payload_type;
    std::string payload;
    std::vector<std::string> keyids; // as the envelope claims them; proves nothing yet
};
// Parses `envelope_text` (untrusted); the error says what is malformed.
util::Result<OpenedEnvelope> open_envelope(std::string_view envelope_text);
// Whether some signature of the envelope verifies over PAE(type, payload) with `public_pem`.
bool envelope_verifies(std::string_view envelope_text, std::string_view public_pem);

// Signs the run in `out` with the private key file `key`: writes OUT/report.dsse.json
// (atomically, replacing an earlier one). The run calls it after report.json is final.
util::Result<void> sign_run(const std::filesystem::path& out, const std::filesystem::path& key);

// A verified envelope: the statement it carries and the keyid of the key that verified it.
struct Verified {
    nlohmann::json statement;
    std::string keyid;
};
// Checks `envelope_text` (untrusted) against the Ed25519 public key in `public_pem`; the error
// says why it does not verify.
util::Result<Verified> verify_envelope(std::string_view envelope_text, std::string_view public_pem);

} // namespace airlock::audit
