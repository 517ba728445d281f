#include "harness.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <grp.h>
#include <sstream>
#include <sys/resource.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace airlock::test {

namespace fs = std::filesystem;

TempDir::TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "airlock-test-XXXXXX").string();
    char* p = ::mkdtemp(tmpl.data());
    if (!p) throw std::runtime_error("mkdtemp failed");
    m_path = p;
}

TempDir::~TempDir() {
    std::error_code ec;
    fs::remove_all(m_path, ec);
}

void write_file(const fs::path& p, const std::string& content) {
    fs::create_directories(p.parent_path());
    std::ofstream f(p, std::ios::binary);
    f << content;
}

std::string read_file(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

nlohmann::json read_report(const fs::path& out) {
    return nlohmann::json::parse(read_file(out / "report.json"));
}

std::vector<std::string> run_args(const fs::path& ws, const fs::path& out,
                                  std::vector<std::string> extra, std::vector<std::string> cmd) {
    std::vector<std::string> a = {"run",         "--quiet",   "--pull", "never",
                                  "--workspace", ws.string(), "--out",  out.string()};
    a.insert(a.end(), extra.begin(), extra.end());
    a.push_back("--");
    a.insert(a.end(), cmd.begin(), cmd.end());
    return a;
}

Proc run_airlock(const std::vector<std::string>& args, const ProcOptions& opts) {
    TempDir capture;
    fs::path out_file = capture.path() / "out", err_file = capture.path() / "err";
    auto start = std::chrono::steady_clock::now();
    pid_t pid = ::fork();
    if (pid == 0) {
        if (!opts.cwd.empty() && ::chdir(opts.cwd.c_str()) != 0) _exit(126);
        int o = ::open(opts.discard_stdout ? "/dev/null" : out_file.c_str(),
                       O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int in = ::open("/dev/null", O_RDONLY);
        ::dup2(in, 0);
        ::dup2(o, 1);
        ::dup2(e, 2);
        if (opts.run_as_uid != 0 &&
            (::setgroups(0, nullptr) != 0 || ::setgid(opts.run_as_uid) != 0 ||
             ::setuid(opts.run_as_uid) != 0))
            _exit(126);
        for (const auto& kv : opts.env)
            ::putenv(const_cast<char*>(kv.c_str()));
        std::vector<char*> argv;
        std::string bin = AIRLOCK_BINARY;
        argv.push_back(bin.data());
        std::vector<std::string> copy = args;
        for (auto& a : copy)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv(bin.c_str(), argv.data());
        _exit(127);
    }
    REQUIRE(pid > 0);
    if (opts.while_running) opts.while_running(pid);
    int status = 0;
    struct rusage ru = {};
    REQUIRE(::wait4(pid, &status, 0, &ru) == pid);
    Proc p;
    p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    p.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    p.max_rss_kb = ru.ru_maxrss;
    if (!opts.discard_stdout) p.out = read_file(out_file);
    p.err = read_file(err_file);
    return p;
}

docker::Client& client() {
    static docker::Client c = [] {
        auto ep = docker::parse_endpoint(docker::endpoint_env_from_process());
        if (!ep) throw std::runtime_error(ep.error().message);
        return docker::Client(*ep);
    }();
    return c;
}

bool engine_available() {
    static int state = -1;
    if (state < 0) state = client().negotiate().ok() ? 1 : 0;
    if (state == 1) return true;
    const char* ci = std::getenv("CI");
    if (ci && std::string(ci) == "true")
        FAIL("no Docker engine answers, and CI=true: integration tests must run (start dockerd, "
             "e.g. ci/setup.sh engine)");
    WARN("no Docker engine answers; skipping this integration test (CI=true makes it fail)");
    return false;
}

std::string run_id_of(const std::string& err) {
    static const std::string marker = "airlock: run ";
    auto pos = err.find(marker);
    if (pos == std::string::npos) return {};
    pos += marker.size();
    auto end = err.find(':', pos);
    return end == std::string::npos ? std::string() : err.substr(pos, end - pos);
}

void require_nothing_left(const Proc& p) {
    std::string run_id = run_id_of(p.err);
    INFO("run id: " << (run_id.empty() ? std::string("(none printed)") : run_id));
    auto& c = client();
    if (!run_id.empty()) {
        auto cs = c.containers_by_label("io.airlock.run", run_id);
        auto vs = c.volumes_by_label("io.airlock.run", run_id);
        auto ns = c.networks_by_label("io.airlock.run", run_id);
        REQUIRE(cs);
        REQUIRE(vs);
        REQUIRE(ns);
        CHECK(cs->empty());
        CHECK(vs->empty());
        CHECK(ns->empty());
    }
    auto left = airlock_leftovers();
    for (int i = 0; i < 60 && !left.empty(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
        left = airlock_leftovers();
    }
    INFO("left on the engine: " << (left.empty() ? std::string("nothing") : left.front()));
    REQUIRE(left.empty());
}

std::vector<std::string> airlock_leftovers() {
    std::vector<std::string> out;
    auto& c = client();
    if (auto cs = c.containers_by_label("io.airlock.run", ""); cs)
        for (const auto& x : *cs)
            out.push_back("container " + x.value("Id", ""));
    if (auto vs = c.volumes_by_label("io.airlock.run", ""); vs)
        for (const auto& x : *vs)
            out.push_back("volume " + x.value("Name", ""));
    if (auto ns = c.networks_by_label("io.airlock.run", ""); ns)
        for (const auto& x : *ns)
            out.push_back("network " + x.value("Name", ""));
    return out;
}

} // namespace airlock::test
