// The signed report: DSSE PAE, Ed25519 keys, sign/verify, and a check by the openssl CLI alone.
#include "audit/dsse.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

using namespace airlock;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

fs::path temp_dir() {
    auto d = fs::temp_directory_path() /
             ("airlock-dsse-" + std::to_string(::getpid()) + "-" + std::to_string(std::rand()));
    fs::create_directories(d);
    return d;
}

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void spit(const fs::path& p, const std::string& text) {
    std::ofstream(p, std::ios::binary) << text;
}

struct Keys {
    fs::path dir = temp_dir();
    audit::KeyPair pair;
    std::string priv, pub;
    explicit Keys(const std::string& name = "k") {
        auto r = audit::keygen((dir / name).string());
        REQUIRE(r.ok());
        pair = *r;
        priv = slurp(pair.private_key);
        pub = slurp(pair.public_key);
    }
};

std::string statement_bytes() {
    return audit::run_statement({{"run_id", "r1"}}, json::array()).dump();
}

} // namespace

TEST_CASE("PAE is the DSSE v1 encoding, byte for byte", "[audit][dsse]") {
    CHECK(audit::pae("http://example.com/HelloWorld", "hello world") ==
          "DSSEv1 29 http://example.com/HelloWorld 11 hello world");
    CHECK(audit::pae("", "") == "DSSEv1 0  0 ");
    const std::string binary("a\0b", 3);
    CHECK(audit::pae("t", binary) == std::string("DSSEv1 1 t 3 a\0b", 16));
}

TEST_CASE("base64 round trip, malformed text is refused", "[audit][dsse]") {
    const std::vector<std::string> inputs = {"",     "f",     "fo",     "foo",
                                             "foob", "fooba", "foobar", std::string("\0\xff", 2)};
    for (const auto& s : inputs)
        CHECK(audit::base64_decode(audit::base64_encode(s)) == s);
    CHECK(audit::base64_encode("foobar") == "Zm9vYmFy");
    CHECK_FALSE(audit::base64_decode("Zm9vYmF").has_value());
    CHECK_FALSE(audit::base64_decode("Zm9v YmFy").has_value());
    CHECK_FALSE(audit::base64_decode("Zm9=YmFy").has_value());
    CHECK_FALSE(audit::base64_decode("Zm9vYmF=").has_value()); // stray bits in the padding
}

TEST_CASE("keygen writes PKCS#8 0600 and SPKI PEM, and never overwrites", "[audit][dsse]") {
    Keys k;
    struct stat st {};
    REQUIRE(::stat(k.pair.private_key.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    REQUIRE(::stat(k.pair.public_key.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0644);
    CHECK(k.priv.rfind("-----BEGIN PRIVATE KEY-----", 0) == 0);
    CHECK(k.pub.rfind("-----BEGIN PUBLIC KEY-----", 0) == 0);
    auto again = audit::keygen((k.dir / "k").string());
    REQUIRE_FALSE(again.ok());
    CHECK(again.error().kind == util::ErrorKind::conflict);
    CHECK(again.error().message.find("never overwrites") != std::string::npos);
    CHECK(slurp(k.pair.private_key) == k.priv);
    // A public file alone also blocks the pair, and no private key is left behind.
    spit(k.dir / "p.pub", "x");
    CHECK_FALSE(audit::keygen((k.dir / "p").string()).ok());
    CHECK_FALSE(fs::exists(k.dir / "p.key"));
    fs::remove_all(k.dir);
}

TEST_CASE("sign and verify round trip, any flipped byte fails", "[audit][dsse]") {
    Keys k;
    const std::string stmt = statement_bytes();
    auto env = audit::make_envelope(stmt, k.priv, "k.key");
    REQUIRE(env.ok());
    auto v = audit::verify_envelope(*env, k.pub);
    REQUIRE(v.ok());
    CHECK(v->statement.dump() == stmt);
    CHECK(v->keyid == *audit::public_key_id(k.pub, "k.pub"));
    const json e = json::parse(*env);
    CHECK(e["payloadType"] == "application/vnd.in-toto+json");
    CHECK(e["signatures"][0]["keyid"] == v->keyid);

    SECTION("a flipped payload byte") {
        std::string payload = *audit::base64_decode(e["payload"].get<std::string>());
        payload[payload.find("r1")] = 's';
        json bad = e;
        bad["payload"] = audit::base64_encode(payload);
        auto r = audit::verify_envelope(bad.dump(), k.pub);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message.find("altered after signing") != std::string::npos);
    }
    SECTION("a flipped signature byte") {
        std::string sig = *audit::base64_decode(e["signatures"][0]["sig"].get<std::string>());
        sig[10] = static_cast<char>(sig[10] ^ 1);
        json bad = e;
        bad["signatures"][0]["sig"] = audit::base64_encode(sig);
        CHECK_FALSE(audit::verify_envelope(bad.dump(), k.pub).ok());
    }
    SECTION("another payload type") {
        json bad = e;
        bad["payloadType"] = "text/plain";
        CHECK_FALSE(audit::verify_envelope(bad.dump(), k.pub).ok());
    }
    SECTION("the wrong key") {
        Keys other("other");
        auto r = audit::verify_envelope(*env, other.pub);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message.find("wrong key?") != std::string::npos);
        fs::remove_all(other.dir);
    }
    SECTION("not an envelope, not a key") {
        CHECK_FALSE(audit::verify_envelope("[]", k.pub).ok());
        CHECK_FALSE(audit::verify_envelope("{", k.pub).ok());
        auto r = audit::verify_envelope(*env, k.priv);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message.find("PRIVATE") == std::string::npos); // no key material
    }
    fs::remove_all(k.dir);
}

TEST_CASE("a signing error never shows the key", "[audit][dsse]") {
    auto r = audit::sign_bytes("-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n",
                               "team.key", "m");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("team.key: not an unencrypted Ed25519 private key") == 0);
    CHECK(r.error().message.find("c2VjcmV0") == std::string::npos);
}

TEST_CASE("subjects: every regular file, sorted, a symlink is refused", "[audit][dsse]") {
    auto out = temp_dir();
    fs::create_directories(out / "logs");
    spit(out / "report.json", "{}");
    spit(out / "logs" / "stdout.log", "hello");
    spit(out / "report.dsse.json", "old");
    auto s = audit::output_subjects(out);
    REQUIRE(s.ok());
    REQUIRE(s->size() == 2);
    CHECK((*s)[0]["name"] == "logs/stdout.log");
    CHECK((*s)[0]["digest"]["sha256"] ==
          "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
    CHECK((*s)[1]["name"] == "report.json");
    fs::create_symlink("/etc/passwd", out / "logs" / "link");
    auto bad = audit::output_subjects(out);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().message.find("logs/link: is a symlink") != std::string::npos);
    fs::remove_all(out);
}

TEST_CASE("the openssl CLI verifies an envelope from its PAE bytes", "[audit][dsse]") {
    Keys k;
    auto out = k.dir / "out";
    fs::create_directories(out);
    spit(out / "report.json", json{{"run_id", "r9"}, {"policy", {{"sha256", "ab"}}}}.dump());
    REQUIRE(audit::sign_run(out, k.pair.private_key).ok());
    const json e = json::parse(slurp(out / "report.dsse.json"));
    const std::string payload = *audit::base64_decode(e["payload"].get<std::string>());
    const json stmt = json::parse(payload);
    CHECK(stmt["predicate"]["run_id"] == "r9");
    CHECK(stmt["predicate"]["policy_sha256"] == "ab");
    CHECK(stmt["subject"].size() == 1);
    spit(k.dir / "pae.bin", audit::pae(e["payloadType"].get<std::string>(), payload));
    spit(k.dir / "sig.bin", *audit::base64_decode(e["signatures"][0]["sig"].get<std::string>()));
    const std::string cmd = "openssl pkeyutl -verify -pubin -inkey " + k.pair.public_key.string() +
                            " -rawin -in " + (k.dir / "pae.bin").string() + " -sigfile " +
                            (k.dir / "sig.bin").string() + " > " + (k.dir / "said").string() +
                            " 2>&1";
    CHECK(std::system(cmd.c_str()) == 0);
    CHECK(slurp(k.dir / "said").find("Signature Verified Successfully") != std::string::npos);
    fs::remove_all(k.dir);
}
