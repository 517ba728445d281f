#include "audit/dsse.hpp"

#include "audit/report.hpp"
#include "util/fd.hpp"
#include "util/read_limited.hpp"
#include "util/sha256.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <memory>
#include <sys/stat.h>
#include <unistd.h>

namespace airlock::audit {

namespace fs = std::filesystem;
using nlohmann::json;
using util::ErrorKind;
using util::make_error;
using util::Result;

namespace {

constexpr std::size_t k_key_file_limit = 64 * 1024;

struct PkeyFree {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct BioFree {
    void operator()(BIO* b) const { BIO_free(b); }
};
struct MdCtxFree {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Bio = std::unique_ptr<BIO, BioFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

// An encrypted key must fail, not prompt on the terminal.
int no_passphrase(char*, int, int, void*) {
    return -1;
}

Bio memory_bio(std::string_view pem) {
    return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

Result<Pkey> read_private(std::string_view pem, const std::string& name) {
    Bio bio = memory_bio(pem);
    Pkey key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr) : nullptr);
    if (!key || EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519)
        return make_error(ErrorKind::invalid_input,
                          name + ": not an unencrypted Ed25519 private key in PEM (PKCS#8); "
                                 "make one with `airlock keygen --out PREFIX`");
    return key;
}

Result<Pkey> read_public(std::string_view pem, const std::string& name) {
    Bio bio = memory_bio(pem);
    Pkey key(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, no_passphrase, nullptr) : nullptr);
    if (!key || EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519)
        return make_error(ErrorKind::invalid_input,
                          name + ": not an Ed25519 public key in PEM (\"BEGIN PUBLIC KEY\"); "
                                 "use the PREFIX.pub that `airlock keygen` wrote");
    return key;
}

std::string keyid_of(EVP_PKEY* key) {
    unsigned char* der = nullptr;
    const int n = i2d_PUBKEY(key, &der);
    if (n <= 0) return {};
    std::string id = util::sha256_hex(
        std::string_view(reinterpret_cast<char*>(der), static_cast<std::size_t>(n)));
    OPENSSL_free(der);
    return id;
}

std::string pem_of(EVP_PKEY* key, bool is_private) {
    Bio bio(BIO_new(BIO_s_mem()));
    if (!bio) return {};
    const int ok = is_private ? PEM_write_bio_PKCS8PrivateKey(bio.get(), key, nullptr, nullptr, 0,
                                                              nullptr, nullptr)
                              : PEM_write_bio_PUBKEY(bio.get(), key);
    if (ok != 1) return {};
    char* data = nullptr;
    const long n = BIO_ctrl(bio.get(), BIO_CTRL_INFO, 0, &data);
    return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

bool ed25519_verify(EVP_PKEY* key, std::string_view message, std::string_view sig) {
    MdCtx ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key) != 1) return false;
    return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()),
                            sig.size(), reinterpret_cast<const unsigned char*>(message.data()),
                            message.size()) == 1;
}

// Creates `path` exclusively with `mode` and writes `text`; on failure nothing is left behind.
Result<void> write_new(const fs::path& path, const std::string& text, mode_t mode) {
    util::Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
    if (!fd.valid())
        return make_error(errno == EEXIST ? ErrorKind::conflict : ErrorKind::io,
                          path.string() + ": cannot create (" + std::strerror(errno) + ")" +
                              (errno == EEXIST ? "; keygen never overwrites a key: choose "
                                                 "another --out or remove the old pair"
                                               : ""));
    if (::fchmod(fd.get(), mode) != 0 || !util::write_all(fd.get(), text) ||
        ::fsync(fd.get()) != 0) {
        const int e = errno;
        fd.reset();
        ::unlink(path.c_str());
        return make_error(ErrorKind::io,
                          path.string() + ": cannot write (" + std::strerror(e) + ")");
    }
    return {};
}

Result<std::string> hash_file(const fs::path& path) {
    auto d = util::sha256_file(path);
    if (!d) return make_error(ErrorKind::io, path.string() + ": cannot be read");
    return d->sha256;
}

const json& at(const json& j, const char* a, const char* b) {
    static const json null;
    if (!j.is_object() || !j.contains(a) || !j[a].is_object() || !j[a].contains(b)) return null;
    return j[a][b];
}

} // namespace

std::string pae(std::string_view payload_type, std::string_view payload) {
    std::string out = "DSSEv1 ";
    out += std::to_string(payload_type.size());
    out += ' ';
    out += payload_type;
    out += ' ';
    out += std::to_string(payload.size());
    out += ' ';
    out += payload;
    return out;
}

std::string base64_encode(std::string_view bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(bytes.data()),
                                  static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(std::max(n, 0)));
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    // EVP_DecodeBlock skips whitespace and ignores what padding means; check the form first.
    if (text.size() % 4 != 0) return std::nullopt;
    const std::size_t pad = text.ends_with("==") ? 2 : text.ends_with('=') ? 1 : 0;
    for (std::size_t i = 0; i < text.size() - pad; ++i) {
        const char c = text[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/'))
            return std::nullopt;
    }
    std::string out(text.size() / 4 * 3, '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(text.data()),
                                  static_cast<int>(text.size()));
    if (n < 0 || static_cast<std::size_t>(n) != out.size()) return std::nullopt;
    out.resize(out.size() - pad);
    // Canonical form only: re-encoding must give the same text (no stray bits in the padding).
    if (base64_encode(out) != text) return std::nullopt;
    return out;
}

Result<KeyPair> keygen(const std::string& prefix) {
    if (prefix.empty())
        return make_error(ErrorKind::invalid_input, "keygen: --out PREFIX is empty");
    KeyPair pair{fs::path(prefix + ".key"), fs::path(prefix + ".pub")};
    std::error_code ec;
    for (const auto& p : {pair.private_key, pair.public_key})
        if (fs::exists(fs::symlink_status(p, ec)))
            return make_error(ErrorKind::conflict,
                              p.string() + ": exists already; keygen never overwrites a key: "
                                           "choose another --out or remove the old pair");
    Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
    if (!key) return make_error(ErrorKind::io, "keygen: OpenSSL could not make an Ed25519 key");
    const std::string priv = pem_of(key.get(), true), pub = pem_of(key.get(), false);
    if (priv.empty() || pub.empty())
        return make_error(ErrorKind::io, "keygen: OpenSSL could not write the key as PEM");
    if (auto r = write_new(pair.private_key, priv, 0600); !r) return r.error();
    if (auto r = write_new(pair.public_key, pub, 0644); !r) {
        ::unlink(pair.private_key.c_str());
        return r.error();
    }
    return pair;
}

Result<std::string> public_key_id(std::string_view pem, const std::string& name) {
    auto key = read_public(pem, name);
    if (!key) return key.error();
    return keyid_of(key->get());
}

Result<Signature> sign_bytes(std::string_view private_pem, const std::string& name,
                             std::string_view message) {
    auto key = read_private(private_pem, name);
    if (!key) return key.error();
    MdCtx ctx(EVP_MD_CTX_new());
    std::string sig(64, '\0');
    std::size_t len = sig.size();
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key->get()) != 1 ||
        EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                       reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1)
        return make_error(ErrorKind::io, name + ": OpenSSL could not sign with this key");
    sig.resize(len);
    return Signature{keyid_of(key->get()), sig};
}

Result<json> output_subjects(const fs::path& out) {
    std::error_code ec;
    if (!fs::is_directory(out, ec))
        return make_error(ErrorKind::not_found, out.string() + ": not a directory");
    std::vector<std::pair<std::string, fs::path>> files;
    fs::recursive_directory_iterator it(out, ec), end;
    if (ec) return make_error(ErrorKind::io, out.string() + ": cannot list (" + ec.message() + ")");
    for (; it != end; it.increment(ec)) {
        if (ec) break;
        const fs::file_status st = it->symlink_status(ec);
        if (ec) break;
        const std::string rel = it->path().lexically_relative(out).generic_string();
        if (fs::is_directory(st)) continue;
        if (!fs::is_regular_file(st))
            return make_error(ErrorKind::refused,
                              it->path().string() + ": is a " +
                                  (fs::is_symlink(st) ? "symlink" : "special file") +
                                  "; a signed output directory holds only regular files "
                                  "(remove it, then sign again)");
        if (rel == k_envelope_file) continue;
        files.emplace_back(rel, it->path());
    }
    if (ec) return make_error(ErrorKind::io, out.string() + ": cannot list (" + ec.message() + ")");
    std::sort(files.begin(), files.end());
    json subjects = json::array();
    for (const auto& [rel, path] : files) {
        auto digest = hash_file(path);
        if (!digest) return digest.error();
        subjects.push_back({{"name", rel}, {"digest", {{"sha256", *digest}}}});
    }
    return subjects;
}

json run_statement(const json& report, const json& subjects) {
    const auto field = [&](const char* key) {
        return report.is_object() && report.contains(key) ? report[key] : json();
    };
    return {{"_type", k_statement_type},
            {"subject", subjects},
            {"predicateType", k_predicate_type},
            {"predicate",
             {{"run_id", field("run_id")},
              {"verdict", field("verdict")},
              {"policy_sha256", at(report, "policy", "sha256")},
              {"events_last_digest", at(report, "events", "last_digest")}}}};
}

Result<std::string> make_envelope(std::string_view statement_bytes, std::string_view private_pem,
                                  const std::string& name) {
    return make_typed_envelope(k_dsse_payload_type, statement_bytes, private_pem, name);
}

Result<std::string> make_typed_envelope(std::string_view payload_type, std::string_view payload,
                                        std::string_view private_pem, const std::string& name) {
    auto sig = sign_bytes(private_pem, name, pae(payload_type, payload));
    if (!sig) return sig.error();
    json envelope = {{"payloadType", payload_type},
                     {"payload", base64_encode(payload)},
                     {"signatures", {{{"keyid", sig->keyid}, {"sig", base64_encode(sig->sig)}}}}};
    return envelope.dump();
}

Result<OpenedEnvelope> open_envelope(std::string_view envelope_text) {
    const auto bad = [](const std::string& why) {
        return make_error(ErrorKind::invalid_input, "the envelope " + why);
    };
    const json env = json::parse(envelope_text, nullptr, false);
    if (env.is_discarded() || !env.is_object()) return bad("is not a JSON object");
    if (!env.contains("payloadType") || !env["payloadType"].is_string())
        return bad("has no payloadType");
    if (!env.contains("payload") || !env["payload"].is_string())
        return bad("has no payload string");
    auto payload = base64_decode(env["payload"].get<std::string>());
    if (!payload) return bad("payload is not base64");
    if (!env.contains("signatures") || !env["signatures"].is_array() || env["signatures"].empty())
        return bad("has no signatures");
    OpenedEnvelope out{env["payloadType"].get<std::string>(), std::move(*payload), {}};
    for (const auto& s : env["signatures"])
        if (s.is_object() && s.contains("keyid") && s["keyid"].is_string())
            out.keyids.push_back(s["keyid"].get<std::string>());
    return out;
}

bool envelope_verifies(std::string_view envelope_text, std::string_view public_pem) {
    auto key = read_public(public_pem, "the public key");
    if (!key) return false;
    const json env = json::parse(envelope_text, nullptr, false);
    auto opened = open_envelope(envelope_text);
    if (!opened) return false;
    const std::string message = pae(opened->payload_type, opened->payload);
    for (const auto& s : env["signatures"]) {
        if (!s.is_object() || !s.contains("sig") || !s["sig"].is_string()) continue;
        const auto sig = base64_decode(s["sig"].get<std::string>());
        if (sig && ed25519_verify(key->get(), message, *sig)) return true;
    }
    return false;
}

Result<void> sign_run(const fs::path& out, const fs::path& key) {
    std::string pem;
    if (util::read_limited(key, k_key_file_limit, pem) != util::ReadStatus::ok)
        return make_error(ErrorKind::invalid_input,
                          key.string() + ": cannot read the signing key (give the PREFIX.key "
                                         "file that `airlock keygen` wrote)");
    if (auto k = read_private(pem, key.string()); !k) return k.error();
    std::ifstream in(out / "report.json", std::ios::binary);
    json report = json::parse(in, nullptr, false);
    if (!in || report.is_discarded() || !report.is_object())
        return make_error(ErrorKind::invalid_input, (out / "report.json").string() +
                                                        ": missing or not JSON; sign a "
                                                        "finished run's output directory");
    auto subjects = output_subjects(out);
    if (!subjects) return subjects.error();
    auto envelope = make_envelope(run_statement(report, *subjects).dump(), pem, key.string());
    if (!envelope) return envelope.error();
    return write_json_file(out / k_envelope_file, json::parse(*envelope));
}

Result<Verified> verify_envelope(std::string_view envelope_text, std::string_view public_pem) {
    auto key = read_public(public_pem, "the public key");
    if (!key) return key.error();
    const std::string keyid = keyid_of(key->get());
    const auto bad = [](const std::string& why) {
        return make_error(ErrorKind::invalid_input, "the envelope " + why);
    };
    const json env = json::parse(envelope_text, nullptr, false);
    if (env.is_discarded() || !env.is_object()) return bad("is not a JSON object");
    if (!env.contains("payloadType") || env["payloadType"] != k_dsse_payload_type)
        return bad("has no payloadType \"" + std::string(k_dsse_payload_type) + "\"");
    if (!env.contains("payload") || !env["payload"].is_string())
        return bad("has no payload string");
    const auto payload = base64_decode(env["payload"].get<std::string>());
    if (!payload) return bad("payload is not base64");
    if (!env.contains("signatures") || !env["signatures"].is_array() || env["signatures"].empty())
        return bad("has no signatures");
    const std::string message = pae(k_dsse_payload_type, *payload);
    std::string others;
    bool verified = false;
    for (const auto& s : env["signatures"]) {
        if (!s.is_object() || !s.contains("sig") || !s["sig"].is_string()) continue;
        const auto sig = base64_decode(s["sig"].get<std::string>());
        if (sig && ed25519_verify(key->get(), message, *sig)) {
            verified = true;
            break;
        }
        if (s.contains("keyid") && s["keyid"].is_string())
            others += (others.empty() ? "" : ", ") + s["keyid"].get<std::string>();
    }
    if (!verified)
        return make_error(ErrorKind::refused,
                          "no signature of the envelope verifies with the public key (keyid " +
                              keyid + "); " +
                              (others.find(keyid) != std::string::npos || others.empty()
                                   ? std::string("the envelope was altered after signing")
                                   : "it was signed by keyid " + others + ": wrong key?"));
    json statement = json::parse(*payload, nullptr, false);
    if (statement.is_discarded() || !statement.is_object() || !statement.contains("_type") ||
        statement["_type"] != k_statement_type)
        return bad("payload is not an in-toto Statement v1");
    if (!statement.contains("predicateType") || statement["predicateType"] != k_predicate_type)
        return bad("payload's predicateType is not " + std::string(k_predicate_type));
    if (!statement.contains("subject") || !statement["subject"].is_array())
        return bad("payload has no subject list");
    return Verified{std::move(statement), keyid};
}

} // namespace airlock::audit
