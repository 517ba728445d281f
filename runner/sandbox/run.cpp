#include "sandbox/run.hpp"

#include "audit/ci_context.hpp"
#include "audit/events.hpp"
#include "audit/redact_file.hpp"
#include "audit/verdict.hpp"
#include "policy/approvers.hpp"
#include "sandbox/egress.hpp"
#include "sandbox/secret_files.hpp"
#include "telemetry/otlp.hpp"
#include "util/json_text.hpp"

#include "audit/report.hpp"
#include "sandbox/artifacts.hpp"
#include "sandbox/cis.hpp"
#include "sandbox/classify.hpp"
#include "sandbox/copy.hpp"
#include "sandbox/patch.hpp"
#include "sandbox/resources.hpp"
#include "sandbox/spec.hpp"
#include "sandbox/workspace.hpp"
#include "util/sha256.hpp"
#include "util/units.hpp"

#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include <fcntl.h>
#include <unistd.h>

namespace airlock::sandbox {

namespace fs = std::filesystem;
using nlohmann::json;
using util::Clock;
using util::Error;
using util::ErrorKind;
using util::make_error;
using util::Result;

std::string new_run_id() {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%dt%H%M%S", &tm);
    std::random_device rd;
    char rnd[8];
    std::snprintf(rnd, sizeof rnd, "%06x", rd() & 0xffffffu);
    return std::string(stamp) + "-" + rnd;
}

namespace {

int exit_code_for(const Error& e) {
    switch (e.kind) {
    case ErrorKind::invalid_input:
        return exit_code::usage;
    case ErrorKind::refused:
        return exit_code::refused;
    case ErrorKind::cancelled:
        return exit_code::interrupted;
    default:
        return exit_code::engine;
    }
}

// Hashes a scanned tree in place (bind modes): the tar writer's manifest, with the archive
// itself thrown away.
Result<Manifest> hash_tree(const WorkspaceScan& scan) {
    int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (devnull < 0) return make_error(ErrorKind::io, "cannot open /dev/null");
    auto man = write_workspace_tar(scan, devnull, TarOwner{0, 0});
    ::close(devnull);
    return man;
}

double ms_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

// Peaks sampled from the engine's stats stream while the task runs.
struct Peaks {
    std::mutex mu;
    std::uint64_t memory = 0; // bytes, cgroup max_usage (v1) or highest usage seen
    std::uint64_t pids = 0;   // highest pids_stats.current seen
    std::uint64_t cpu_ns = 0; // cpu_stats.cpu_usage.total_usage, last seen
    std::uint64_t samples = 0;
};

class Pipeline {
public:
    Pipeline(docker::Client& client, const config::RunOptions& opts, const RunContext& ctx)
        : m_client(client), m_opts(opts), m_ctx(ctx), m_resources(client),
          m_output(opts.output_cap, ctx.echo) {
        // Secrets injected as variables travel with the env; the report lists names only.
        std::vector<std::string> values;
        for (const auto& secret : m_opts.secrets) {
            if (!file_secrets()) m_opts.env.emplace_back(secret.name, secret.value);
            values.push_back(secret.value);
        }
        // Credentials stay in the sidecar; the task gets only the variables that point its SDK
        // at the local endpoint. Their values are redacted all the same, should an upstream echo
        // one back.
        for (const auto& c : m_opts.credentials) {
            m_opts.env.insert(m_opts.env.end(), c.env.begin(), c.env.end());
            values.push_back(c.value);
        }
        m_redactor = audit::Redactor(values);
        m_output.set_redactor(m_redactor);
        // Telemetry: the run's trace continues the caller's (TRACEPARENT); the task gets a child.
        auto env = [](const std::string& name) -> std::optional<std::string> {
            const char* v = std::getenv(name.c_str());
            return v ? std::optional<std::string>(v) : std::nullopt;
        };
        m_otlp = telemetry::settings_from_env(env);
        m_trace = telemetry::make_trace_context(env);
        bool given = false;
        for (const auto& e : m_opts.env)
            given = given || e.first == "TRACEPARENT";
        if ((m_otlp || env("TRACEPARENT")) && !given)
            m_opts.env.emplace_back("TRACEPARENT", m_trace.child_traceparent());
    }

    RunOutcome run();

private:
    Result<void> step(const char* name, const std::function<Result<void>()>& fn);
    Result<void> resolve();
    Result<void> preflight();
    Result<void> prepare();
    Result<void> create();
    Result<void> verify();
    Result<void> copy_in_step();
    Result<void> start_and_wait();
    Result<void> choose_runtime(bool podman);
    bool file_secrets() const {
        return !m_opts.secrets.empty() && m_ctx.decision.secret_inject == "file";
    }
    Result<void> collect();
    Result<void> collect_changes();
    Result<void> collect_artifacts_step();
    void check_protected(const ChangeSet& changes);
    void emit_approvals(); // approval.* events for decisions not yet in the log
    void record_approvals();
    void teardown();
    void assemble_report();
    void export_telemetry(); // bounded; the outcome goes into the report // every field but
                             // violations, checks, verdict and events
    json network_report() const;
    void say(const std::string& s) const {
        if (m_ctx.say) m_ctx.say(m_redactor.redact(s));
    }

    docker::Client& m_client;
    config::RunOptions m_opts; // a copy: preflight settles the runtime, secrets join the env
    const RunContext& m_ctx;
    audit::Redactor m_redactor; // the run's secrets, kept out of everything written
    Resources m_resources;
    OutputSink m_output;

    Clock::time_point m_t0 = Clock::now();
    std::string m_run_id = new_run_id();
    fs::path m_out, m_workspace;
    std::optional<WorkspaceScan> m_scan;
    Manifest m_before;
    std::string m_image_id;
    std::string m_container_id;
    std::string m_secrets_volume, m_secrets_holder; // file secrets: tmpfs volume, its holder
    std::vector<std::string> m_image_entrypoint;
    std::optional<telemetry::Settings> m_otlp; // set when OTLP export is configured
    telemetry::TraceContext m_trace;
    audit::EventLog m_events;                   // declared before m_egress, which writes to it
    std::unique_ptr<EgressSidecar> m_egress;    // proxied network modes
    ContainerPlan m_plan;                       // what create asked for; verify compares
    std::vector<std::string> m_create_warnings; // the engine's own word on what it did not apply
    ExitFacts m_facts;
    std::optional<Classification> m_class;
    Peaks m_peaks;
    json m_report;
    json m_steps = json::array();
    bool m_out_ready = false;
    std::string m_pending_approval; // why the run waits for an approval (protected paths)
    std::size_t m_emitted_presented = 0, m_emitted_granted = 0, m_emitted_requested = 0;
    std::size_t m_start_requests = 0; // requests made before the run started
};

Result<void> Pipeline::step(const char* name, const std::function<Result<void>()>& fn) {
    if (util::interrupted() && std::string(name) != "teardown")
        return make_error(ErrorKind::cancelled, "interrupted before " + std::string(name));
    auto start = Clock::now();
    auto r = fn();
    auto end = Clock::now();
    m_steps.push_back({{"step", name},
                       {"start_ms", std::llround(ms_between(m_t0, start))},
                       {"duration_ms", std::llround(ms_between(start, end))},
                       {"ok", r.ok()}});
    return r;
}

Result<void> Pipeline::resolve() {
    std::error_code ec;
    m_workspace = fs::weakly_canonical(fs::absolute(m_opts.workspace), ec);
    if (ec || !fs::is_directory(m_workspace, ec))
        return make_error(ErrorKind::invalid_input,
                          "workspace: " + m_opts.workspace.string() +
                              ": does not exist or is not a directory (pass --workspace DIR)");
    m_out = m_opts.out ? fs::absolute(*m_opts.out) : m_ctx.cwd / ".airlock" / "runs" / m_run_id;
    m_out = m_out.lexically_normal();
    if (fs::exists(m_out, ec) && !fs::is_empty(m_out, ec))
        return make_error(ErrorKind::invalid_input,
                          "--out: " + m_out.string() +
                              " exists and is not empty (choose a new directory; airlock never "
                              "overwrites a run)");
    if (!fs::create_directories(m_out / "logs", ec) && ec)
        return make_error(ErrorKind::invalid_input,
                          "--out: " + m_out.string() + ": cannot create (" + ec.message() + ")");
    m_out_ready = true;
    if (auto r = m_output.open(m_out / "logs"); !r) return r;
    if (auto r = m_events.open(m_out / "events.jsonl", &m_redactor); !r) return r;
    m_events.append("run.start", {{"run_id", m_run_id},
                                  {"image", m_opts.image},
                                  {"network", m_opts.network.mode},
                                  {"workspace_mode", config::to_string(m_opts.workspace_mode)}});
    if (m_ctx.policy) {
        json layers = json::array();
        for (const auto& l : m_ctx.policy->layers)
            layers.push_back({{"source", l.source}, {"sha256", l.sha256}});
        m_events.append("policy.resolved", {{"layers", layers},
                                            {"sha256", policy::digest(*m_ctx.policy)},
                                            {"capabilities", m_ctx.decision.capabilities.size()}});
    }
    emit_approvals();
    m_start_requests = m_emitted_requested;

    if (m_opts.workspace_mode != config::WorkspaceMode::bind_ro) {
        std::vector<std::string> excludes = {".airlock"};
        auto rel = m_out.lexically_relative(m_workspace);
        if (!rel.empty() && *rel.begin() != ".." && rel != ".") excludes.push_back(rel.string());
        auto scan = scan_workspace(m_workspace, excludes);
        if (!scan) return scan.error();
        m_scan = std::move(*scan);
    }
    return {};
}

Result<void> Pipeline::preflight() {
    auto v = m_client.negotiate();
    if (!v) {
        if (v.error().kind == ErrorKind::unreachable)
            return make_error(
                ErrorKind::unreachable,
                v.error().message +
                    " (start the engine, e.g. `ci/setup.sh engine`, or set DOCKER_HOST)");
        return v.error();
    }
    m_report["engine"] = {{"endpoint", m_client.endpoint().display()},
                          {"version", v->version},
                          {"api_version", v->negotiated},
                          {"podman", v->podman}};
    if (auto r = choose_runtime(v->podman); !r) return r;
    auto img = m_client.image_inspect(m_opts.image);
    if (!img && img.error().kind == ErrorKind::not_found && !m_opts.pull_missing)
        return make_error(ErrorKind::not_found,
                          "image " + m_opts.image +
                              ": not on the engine (build it with `ci/setup.sh images`, pass "
                              "--image, or allow pulling with --pull missing)");
    if (!img && img.error().kind == ErrorKind::not_found) {
        say("image " + m_opts.image + " is not on the engine; pulling it");
        // Progress on a terminal only; CI logs get the one line above.
        const bool tty = ::isatty(2) != 0;
        auto pulled = m_client.image_pull(m_opts.image, [tty](const json& p) {
            if (!tty || !p.is_object()) return;
            std::string line =
                p.value("id", "") + " " + p.value("status", "") + " " + p.value("progress", "");
            std::fprintf(stderr, "\r\033[K%s", line.substr(0, 120).c_str());
        });
        if (tty) std::fprintf(stderr, "\r\033[K");
        if (!pulled)
            return make_error(ErrorKind::not_found,
                              "image " + m_opts.image +
                                  ": not on the engine and it cannot be pulled (" +
                                  pulled.error().message +
                                  "); build it with `ci/setup.sh images` or pass --image");
        img = m_client.image_inspect(m_opts.image);
    }
    if (!img) return img.error();
    m_image_id = img->value("Id", "");
    if (img->contains("Config") && (*img)["Config"].is_object()) {
        const json& ep = (*img)["Config"].value("Entrypoint", json());
        if (ep.is_array())
            for (const auto& a : ep)
                if (a.is_string()) m_image_entrypoint.push_back(a.get<std::string>());
    }
    json digests = img->contains("RepoDigests") ? (*img)["RepoDigests"] : json::array();
    m_report["image"] = {
        {"reference", m_opts.image}, {"id", m_image_id}, {"repo_digests", digests}};
    m_events.append("image.resolved",
                    {{"reference", m_opts.image}, {"id", m_image_id}, {"repo_digests", digests}});
    return {};
}

Result<void> Pipeline::prepare() {
    if (m_opts.workspace_mode == config::WorkspaceMode::volume) {
        std::string vol = "airlock-" + m_run_id + "-workspace";
        auto r =
            m_client.volume_create(vol, {{k_label_run, m_run_id}, {k_label_role, "workspace"}});
        if (!r) return r;
        m_resources.add_volume(vol);
    }
    if (file_secrets()) {
        m_secrets_volume = "airlock-" + m_run_id + "-secrets";
        auto holder = stage_secret_files(m_client, m_resources, m_run_id, m_secrets_volume,
                                         m_opts.secrets, m_opts.user);
        if (!holder) return holder.error();
        m_secrets_holder = *holder;
    }
    if (m_opts.network.proxied()) {
        std::string ca_bundle;
        if (!m_opts.credentials.empty()) {
            auto ca = read_ca_bundle(m_opts.ca_bundle, m_opts.origin.count("ca_bundle")
                                                           ? m_opts.origin.at("ca_bundle")
                                                           : std::string("default"));
            if (!ca) return ca.error();
            ca_bundle = std::move(*ca);
        }
        m_egress = std::make_unique<EgressSidecar>(
            m_client, m_resources, m_run_id, m_opts.network, m_opts.credentials,
            std::move(ca_bundle), [this](const json& d) {
                m_events.append("network.decision", d);
                // Any field may be null (a request that could not be parsed names no host).
                auto text = [&d](const char* key) {
                    if (!d.contains(key) || d[key].is_null()) return std::string("?");
                    return d[key].is_string() ? d[key].get<std::string>() : d[key].dump();
                };
                const std::string decision = text("decision");
                if (decision != "allow")
                    say("network: " + std::string(decision == "cut" ? "cut " : "refused ") +
                        (d.contains("endpoint") ? "credential endpoint " + text("endpoint") + ": "
                                                : std::string()) +
                        text("method") + " " + text("host") + ":" + text("port") + " (" +
                        text("rule") + ")");
            });
        if (auto r = m_egress->start(); !r) return r;
    }
    return {};
}

Result<void> Pipeline::create() {
    m_plan = ContainerPlan{m_run_id,
                           m_image_id,
                           "airlock-" + m_run_id + "-workspace",
                           m_workspace.string(),
                           m_secrets_volume,
                           m_egress ? m_egress->volume() : std::string(),
                           m_image_entrypoint,
                           m_opts.credentials.empty() ? CredentialEndpoint::no
                                                      : CredentialEndpoint::yes};
    json body = build_create_body(m_opts, m_plan);
    auto c = m_client.container_create("airlock-" + m_run_id, body);
    if (!c) return c.error();
    m_container_id = c->id;
    m_resources.add_container(c->id);
    m_create_warnings = c->warnings;
    m_report["container"] = {{"id", c->id}, {"warnings", c->warnings}};
    m_events.append("container.created", {{"id", c->id},
                                          {"name", "airlock-" + m_run_id},
                                          {"runtime", m_opts.runtime},
                                          {"warnings", c->warnings}});
    for (const auto& w : c->warnings)
        say("engine warning: " + w);
    return {};
}

Result<void> Pipeline::verify() {
    auto ins = m_client.container_inspect(m_container_id);
    if (!ins) return ins.error();
    auto mismatches = verify_container(*ins, m_opts, m_plan, m_create_warnings);
    m_report["cis"] = to_json(evaluate_cis(*ins, m_opts, m_plan));
    json list = json::array();
    for (const auto& m : mismatches)
        list.push_back({{"field", m.field}, {"expected", m.expected}, {"actual", m.actual}});
    m_report["enforcement"] = {{"verified", mismatches.empty()}, {"mismatches", list}};
    std::size_t cis_failed = 0;
    for (const auto& c : m_report["cis"]["checks"])
        cis_failed += c.value("status", "") == "fail" ? 1 : 0;
    m_events.append(
        "enforcement.verified",
        {{"verified", mismatches.empty()}, {"mismatches", list}, {"cis_failed", cis_failed}});
    return refuse_on_mismatch(mismatches);
}

Result<void> Pipeline::copy_in_step() {
    if (m_opts.workspace_mode != config::WorkspaceMode::volume) {
        if (m_scan) {
            // bind-rw: hash the tree in place to have something to diff against afterwards.
            auto man = hash_tree(*m_scan);
            if (!man) return man.error();
            m_before = std::move(*man);
        }
        return {};
    }
    unsigned uid = 0, gid = 0;
    std::sscanf(m_opts.user.c_str(), "%u:%u", &uid, &gid);
    auto man = copy_in(m_client, m_container_id, *m_scan, TarOwner{uid, gid});
    if (!man) return man.error();
    m_before = std::move(*man);
    return {};
}

Result<void> Pipeline::start_and_wait() {
    // Attach first: all output from the first byte, with no race against a fast exit (a
    // logs?follow=1 after start can miss the output of a task that ends at once).
    std::optional<Result<void>> log_result;
    std::mutex ready_mu;
    std::condition_variable ready_cv;
    std::optional<bool> attached;
    util::CancelToken stop_attach;
    std::thread logs([&] {
        log_result.emplace(m_client.container_attach(
            m_container_id,
            [&](docker::StreamId s, std::string_view d) { return m_output.write(s, d); },
            [&](bool ok) {
                std::lock_guard<std::mutex> lock(ready_mu);
                attached = ok;
                ready_cv.notify_all();
            },
            &stop_attach));
    });
    {
        std::unique_lock<std::mutex> lock(ready_mu);
        ready_cv.wait(lock, [&] { return attached.has_value(); });
    }
    if (!*attached) {
        logs.join();
        if (log_result && !log_result->ok()) return log_result->error();
        return make_error(ErrorKind::server_error, "could not attach to the container's output");
    }
    if (m_egress)
        if (auto r = m_egress->created(); !r) {
            stop_attach.cancel();
            logs.join();
            return r;
        }
    auto started = m_client.container_start(m_container_id);
    if (!started) {
        stop_attach.cancel(); // a container that never started may keep the stream open
        logs.join();
        if (started.error().kind == ErrorKind::cancelled) return started;
        m_facts.started = false;
        m_facts.start_error = started.error().message;
        m_class = classify(m_facts);
        if (m_class->outcome == Outcome::engine_error) return started;
        return {};
    }
    m_facts.started = true;
    auto t_start = Clock::now();
    m_events.append("container.started", {{"id", m_container_id}});
    // The proxy starts alongside; airlock-init holds the task's connections until it listens.
    // Should it not come up, the task is stopped: it would only wait for a proxy that never is.
    std::optional<Error> proxy_failed;
    std::thread proxy_watch;
    if (m_egress)
        proxy_watch = std::thread([&] {
            if (auto r = m_egress->ready(); !r) {
                proxy_failed = r.error();
                (void)m_client.container_kill(m_container_id, "SIGKILL");
            }
        });
    // The agent's mount now keeps the secrets tmpfs alive; the holder has done its job.
    if (!m_secrets_holder.empty()) {
        if (auto r = m_client.container_remove(m_secrets_holder, docker::Force::yes); !r)
            say("could not remove the secrets holder early: " + r.error().message);
        m_secrets_holder.clear();
    }

    // Stats begin after a second, so short tasks pay nothing for them; on cgroup v1 the
    // memory peak (max_usage) covers the whole life of the container anyway.
    util::CancelToken stats_stop;
    std::mutex stats_mu;
    std::condition_variable stats_cv;
    bool finished = false;
    std::thread stats([&] {
        {
            std::unique_lock<std::mutex> lock(stats_mu);
            if (stats_cv.wait_for(lock, std::chrono::seconds(1), [&] { return finished; })) return;
        }
        (void)m_client.container_stats_stream(m_container_id, [&](const json& s) {
            if (stats_stop.cancelled()) return false;
            std::lock_guard<std::mutex> lock(m_peaks.mu);
            // Engines leave fields out or null (Podman, a stopping container): read defensively.
            auto num = [&](std::initializer_list<const char*> path) -> std::uint64_t {
                const json* j = &s;
                for (const char* k : path) {
                    if (!j->is_object() || !j->contains(k)) return 0;
                    j = &(*j)[k];
                }
                return j->is_number_unsigned() ? j->get<std::uint64_t>() : 0;
            };
            std::uint64_t peak =
                std::max(num({"memory_stats", "max_usage"}), num({"memory_stats", "usage"}));
            m_peaks.memory = std::max(m_peaks.memory, peak);
            m_peaks.pids = std::max(m_peaks.pids, num({"pids_stats", "current"}));
            auto cpu = num({"cpu_stats", "cpu_usage", "total_usage"});
            if (cpu) m_peaks.cpu_ns = cpu;
            // One sample in five becomes an event: a trail of the run's use, not a flood.
            if (m_peaks.samples++ % 5 == 0)
                m_events.append("resource.sample",
                                {{"memory_bytes", num({"memory_stats", "usage"})},
                                 {"pids", num({"pids_stats", "current"})},
                                 {"cpu_ns", cpu}});
            return true;
        });
    });

    auto deadline = t_start + m_opts.timeout;
    auto waited = m_client.container_wait(m_container_id, deadline);
    if (!waited && waited.error().kind == ErrorKind::timeout) {
        m_facts.timed_out = true;
        m_events.append("timeout", {{"timeout_ms", m_opts.timeout.count()},
                                    {"grace_ms", m_opts.grace.count()}});
        say("timeout of " + util::format_duration(m_opts.timeout) + " reached; sending SIGTERM");
        (void)m_client.container_kill(m_container_id, "SIGTERM");
        waited = m_client.container_wait(m_container_id, Clock::now() + m_opts.grace);
        if (!waited && waited.error().kind == ErrorKind::timeout) {
            say("still running after " + util::format_duration(m_opts.grace) + "; sending SIGKILL");
            (void)m_client.container_kill(m_container_id, "SIGKILL");
            waited =
                m_client.container_wait(m_container_id, Clock::now() + std::chrono::minutes(1));
        }
    }
    auto t_end = Clock::now();
    {
        std::lock_guard<std::mutex> lock(stats_mu);
        finished = true;
    }
    stats_cv.notify_all();
    stats_stop.cancel();

    if (!waited && waited.error().kind == ErrorKind::cancelled) {
        // Ctrl-C: stop now; teardown removes the container, which ends the streams.
        m_client.set_interruptible(docker::Interruptible::no);
        (void)m_client.container_kill(m_container_id, "SIGKILL");
    }
    logs.join();
    stats.join();
    if (proxy_watch.joinable()) proxy_watch.join();
    m_report["task_duration_ms"] = std::llround(ms_between(t_start, t_end));
    if (proxy_failed) {
        m_facts.engine_failed = true;
        m_class = classify(m_facts);
        return *proxy_failed;
    }
    if (!waited) {
        if (waited.error().kind == ErrorKind::cancelled) return waited.error();
        m_facts.engine_failed = true;
        m_class = classify(m_facts);
        return waited.error();
    }
    m_facts.status_code = waited->status_code;
    auto ins = m_client.container_inspect(m_container_id);
    if (ins) {
        const json& st = ins->value("State", json::object());
        m_facts.oom_killed = st.value("OOMKilled", false);
    }
    if (m_facts.oom_killed) m_events.append("oom", {{"memory_bytes", m_opts.memory}});
    m_events.append("process.exit", {{"status_code", m_facts.status_code},
                                     {"oom_killed", m_facts.oom_killed},
                                     {"timed_out", m_facts.timed_out},
                                     {"duration_ms", std::llround(ms_between(t_start, t_end))}});
    m_class = classify(m_facts);
    if (log_result && !log_result->ok() && log_result->error().kind != ErrorKind::cancelled)
        say("log stream: " + log_result->error().message);
    if (!m_output.write_error().empty()) return make_error(ErrorKind::io, m_output.write_error());
    return {};
}

Result<void> Pipeline::collect() {
    // The task is over: the proxy's last decisions come in while the workspace is read back.
    std::thread stopper;
    if (m_egress) stopper = std::thread([this] { m_egress->stop(); });
    auto r = collect_changes();
    auto a = collect_artifacts_step();
    if (stopper.joinable()) stopper.join();
    return r ? a : r;
}

Result<void> Pipeline::collect_artifacts_step() {
    if (m_opts.artifacts.empty() || !m_facts.started) return {};
    auto got = collect_artifacts(m_client, m_container_id, m_opts.artifacts, m_out / "artifacts",
                                 {m_opts.artifact_max_file, m_opts.artifact_max_total});
    if (!got) return got.error();
    // A secret written into an artifact is replaced like in the changed files.
    auto leaked = audit::redact_tree(m_out / "artifacts", m_redactor);
    if (!leaked) return leaked.error();
    if (!leaked->empty()) {
        (*got)["secrets_redacted_in"] = *leaked;
        for (const auto& p : *leaked)
            m_report["secrets_redacted_in"].push_back("artifacts/" + p);
        // The hashes must describe the files as written.
        for (auto& f : (*got)["files"])
            for (const auto& p : *leaked)
                if (f["path"] == p)
                    if (auto d = util::sha256_file(m_out / "artifacts" / p)) {
                        f["sha256"] = d->sha256;
                        f["size"] = d->size;
                    }
    }
    for (const auto& f : (*got)["files"])
        m_events.append("artifact.collected", f);
    for (const auto& p : (*got)["missing"])
        say("artifact " + p.get<std::string>() + ": nothing matched in /workspace");
    m_report["artifacts"] = *got;
    return {};
}

Result<void> Pipeline::collect_changes() {
    if (m_opts.workspace_mode == config::WorkspaceMode::bind_ro || !m_facts.started) return {};
    ChangeSet changes;
    if (m_opts.workspace_mode == config::WorkspaceMode::volume) {
        auto c = copy_out(m_client, m_container_id, m_before, m_out / "changes" / "files",
                          CopyOutLimits{1ull << 30, 4ull << 30});
        if (!c) return c.error();
        changes = std::move(*c);
    } else {
        auto rescan = scan_workspace(m_workspace, {".airlock"});
        if (!rescan) return rescan.error();
        auto after = hash_tree(*rescan);
        if (!after) return after.error();
        changes = diff_manifests(m_before, *after);
    }
    check_protected(changes);
    json cj = to_json(changes);
    // One event per changed file, up to a bound; the manifest has them all.
    constexpr std::size_t k_file_events = 10000;
    std::size_t n_events = 0, total = 0;
    for (const char* kind : {"added", "modified", "deleted"})
        for (const auto& f : cj[kind]) {
            if (++total > k_file_events) continue;
            ++n_events;
            m_events.append("file.changed",
                            {{"change", kind},
                             {"path", f.value("path", "")},
                             {"type", f.value("type", "")},
                             {"size", f.value("size", 0)},
                             {"sha256", f.contains("sha256") ? f["sha256"] : json()}});
        }
    if (total > n_events)
        m_events.append("file.changed.more",
                        {{"not_listed", total - n_events}, {"manifest", "changes/manifest.json"}});
    std::error_code ec;
    fs::create_directories(m_out / "changes", ec);
    if (auto r = audit::write_json_file(m_out / "changes" / "manifest.json", cj, &m_redactor); !r)
        return r;
    auto leaked = audit::redact_tree(m_out / "changes" / "files", m_redactor);
    if (!leaked) return leaked.error();
    if (!leaked->empty()) {
        m_report["secrets_redacted_in"] = *leaked;
        say("a secret was written into " + std::to_string(leaked->size()) +
            " changed file(s); replaced by *** in the output (see report.json)");
    }
    m_report["changes"] = {
        {"added", changes.added.size()},      {"modified", changes.modified.size()},
        {"deleted", changes.deleted.size()},  {"bytes", changes.bytes_added_or_modified},
        {"skipped", changes.skipped},         {"files", cj},
        {"manifest", "changes/manifest.json"}};
    // The patch (volume mode: the checkout still holds the originals).
    if (m_opts.workspace_mode == config::WorkspaceMode::volume && !changes.empty()) {
        auto patch = write_changes_patch(m_workspace, cj, m_out / "changes" / "files",
                                         m_out / "changes.patch");
        if (!patch) return patch.error();
        if (patch->value("written", false)) {
            // Originals come from the checkout: a secret value there is redacted too.
            if (auto r = audit::redact_file(m_out / "changes.patch", m_redactor); r && *r) {
                (*patch)["note"] = "a secret was replaced by *** in the patch, which may then not "
                                   "apply as it is";
                // The digest describes the file as written.
                if (auto d = util::sha256_file(m_out / "changes.patch")) {
                    (*patch)["sha256"] = d->sha256;
                    (*patch)["bytes"] = d->size;
                }
            }
        } else {
            say("changes.patch not written: " + patch->value("reason", ""));
        }
        m_report["changes"]["patch"] = *patch;
    }
    return {};
}

Result<void> Pipeline::choose_runtime(bool podman) {
    // Podman ignores Runtime; it runs its own configured runtime.
    if (podman || (m_opts.runtimes.empty() && m_opts.runtime == "runc")) return {};
    auto info = m_client.info();
    if (!info) return info.error();
    std::vector<std::string> wanted = m_opts.runtimes;
    if (wanted.empty()) wanted = {m_opts.runtime};
    auto picked = pick_runtime(wanted, info->value("Runtimes", json::object()));
    if (!picked) return picked.error();
    m_opts.runtime = *picked;
    if (*picked != wanted.front())
        say("runtime " + wanted.front() + " is not on the engine; using " + *picked +
            " (allowed by the policy)");
    return {};
}

// A change under a protected path needs an approval for path:<path>. Without one the changes
// stay in OUT, marked pending, the run ends 126 and the gate answers 3 until an approval bound to
// the report (`airlock approve --for-report OUT`) is given to it.
void Pipeline::check_protected(const ChangeSet& changes) {
    if (!m_ctx.policy) return;
    policy::NoApprovals none;
    const policy::Approvals& approvals = m_ctx.approvals ? *m_ctx.approvals : none;
    json hits = json::array();
    std::vector<std::string> pending, globs;
    auto visit = [&](const std::vector<FileEntry>& list, const char* kind) {
        for (const auto& e : list) {
            auto glob = policy::protected_by(*m_ctx.policy, e.path);
            if (!glob) continue;
            json hit = {{"path", e.path}, {"change", kind}, {"pattern", *glob}};
            if (auto who = approvals.grant("path:" + e.path, std::string(kind) + " " + e.path)) {
                hit["approved_by"] = *who;
            } else {
                pending.push_back(e.path);
                if (std::find(globs.begin(), globs.end(), *glob) == globs.end())
                    globs.push_back(*glob);
            }
            hits.push_back(hit);
        }
    };
    visit(changes.added, "added");
    visit(changes.modified, "modified");
    visit(changes.deleted, "deleted");
    emit_approvals();
    if (hits.empty()) return;
    m_report["protected_changes"] = {{"changes", hits}, {"pending", pending}};
    if (pending.empty()) return;
    std::string list, caps;
    for (const auto& p : pending)
        list += (list.empty() ? "" : ", ") + p;
    for (const auto& g : globs)
        caps += std::string(caps.empty() ? "" : " ") + "--capability 'path:" + g + "'";
    m_pending_approval =
        "the task changed protected paths (" + list + "; workspace.protected from " +
        m_ctx.policy->origin("workspace/protected") + ")" +
        (m_opts.workspace_mode == config::WorkspaceMode::bind_rw
             ? "; with bind-rw the change is already in the workspace"
             : "; the changes are in the output, pending an approval") +
        ": an approver runs `airlock approve --key KEY " + caps + " --for-report " +
        m_out.string() + " --out approval.json`, then `airlock gate " + m_out.string() +
        " --approvals approval.json`; " +
        policy::approval_hint(*m_ctx.policy, "path:" + globs.front());
}

void Pipeline::emit_approvals() {
    if (!m_ctx.approvals || !m_out_ready) return;
    const json r = m_ctx.approvals->records();
    if (!r.is_object()) return;
    auto emit = [&](const char* key, const char* type, std::size_t& done, bool refused_only) {
        const json& list = r[key];
        for (; done < list.size(); ++done) {
            const json& e = list[done];
            if (refused_only && e.value("valid", true)) continue;
            m_events.append(type, e);
        }
    };
    emit("presented", "approval.refused", m_emitted_presented, true);
    emit("granted", "approval.granted", m_emitted_granted, false);
    emit("requested", "approval.requested", m_emitted_requested, false);
}

// report.approvals: what was presented, granted and asked for, and one request per host the
// proxy refused (a decision for a person: allow it next time, or not).
void Pipeline::record_approvals() {
    json r = m_ctx.approvals ? m_ctx.approvals->records() : json();
    if (!r.is_object())
        r = {
            {"presented", json::array()}, {"granted", json::array()}, {"requested", json::array()}};
    for (std::size_t i = 0; i < r["requested"].size(); ++i)
        r["requested"][i]["stage"] = i < m_start_requests ? "start" : "collect";
    std::map<std::pair<std::string, std::int64_t>, json> hosts;
    const json& refusals = util::json_at(m_report, {"network", "summary", "refusals"});
    for (const auto& d : refusals) {
        if (!d.is_object() || d.value("decision", "") != "deny" || !d["host"].is_string() ||
            !d["port"].is_number_integer())
            continue;
        json& h = hosts[{d["host"].get<std::string>(), d["port"].get<std::int64_t>()}];
        if (h.is_null())
            h = {{"count", 0},
                 {"first_time", d.contains("time") ? d["time"] : json()},
                 {"rule", d.contains("rule") ? d["rule"] : json()}};
        h["count"] = h["count"].get<std::int64_t>() + 1;
    }
    for (const auto& [key, h] : hosts) {
        const std::string cap = "network.host:" + key.first + ":" + std::to_string(key.second);
        json names = json::array();
        if (m_ctx.policy)
            for (const auto& a :
                 policy::approvers_for(m_ctx.policy->get("approvals/approvers"), cap))
                names.push_back(a.value("name", ""));
        json q = {{"capability", cap},
                  {"detail", "the proxy refused " + std::to_string(h["count"].get<std::int64_t>()) +
                                 " request(s) to " + key.first + ":" + std::to_string(key.second)},
                  {"stage", "network"},
                  {"host", key.first},
                  {"port", key.second},
                  {"count", h["count"]},
                  {"first_time", h["first_time"]},
                  {"rule", h["rule"]},
                  {"approvers", names}};
        m_events.append("approval.requested", q);
        r["requested"].push_back(std::move(q));
    }
    m_report["approvals"] = r;
}

void Pipeline::teardown() {
    if (m_egress) m_egress->stop();
    auto errors = m_resources.teardown();
    m_report["teardown"] = {{"removed", m_resources.removed()}, {"errors", errors}};
    for (const auto& e : errors)
        say("teardown: could not remove " + e + " (run `airlock clean`)");
}

json Pipeline::network_report() const {
    const auto& n = m_opts.network;
    json j = {{"mode", n.mode}};
    if (n.mode == "none") {
        j["description"] = "no interface but lo";
        return j;
    }
    j["egress_network"] = n.egress_network;
    if (n.mode == "open") {
        j["description"] = "the task is on the egress network itself; nothing is filtered";
        return j;
    }
    j["description"] = n.mode == "audit"
                           ? "no interface but lo; every request through the egress proxy, "
                             "allowed and recorded (private addresses still refused)"
                           : "no interface but lo; requests through the egress proxy, which "
                             "lets through only what the rules allow";
    j["rules"] = {{"allow", n.allow},
                  {"deny", n.deny},
                  {"methods", n.methods},
                  {"allow_cidrs", n.allow_cidrs},
                  {"upload_budget_bytes", n.upload_budget ? json(*n.upload_budget) : json()}};
    json credentials = json::array();
    for (const auto& c : m_opts.credentials) {
        json env = json::array();
        for (const auto& e : c.env)
            env.push_back(e.first);
        credentials.push_back(
            {{"name", c.name},
             {"endpoint", "http://127.0.0.1:" + std::to_string(k_credential_port) + "/" + c.name},
             {"upstream", c.upstream},
             {"header", c.header},
             {"secret", c.secret},
             {"env", env},
             {"max_requests", c.max_requests ? json(*c.max_requests) : json()},
             {"max_bytes", c.max_bytes ? json(*c.max_bytes) : json()},
             {"ca_bundle", m_opts.ca_bundle.string()}});
    }
    if (!credentials.empty()) j["credentials"] = credentials;
    if (m_egress) {
        j["proxy"] = m_egress->report();
        j["summary"] = network_summary(m_egress->decisions());
    }
    return j;
}

void Pipeline::assemble_report() {
    if (!m_out_ready) return;
    m_report["schema"] = audit::k_report_schema;
    m_report["schema_version"] = audit::k_report_version;
    m_report["airlock_version"] = AIRLOCK_VERSION;
    m_report["run_id"] = m_run_id;
    m_report["command"] = m_opts.command;
    json env_names = json::array();
    for (const auto& e : m_opts.env) {
        bool secret = false;
        for (const auto& sec : m_opts.secrets)
            secret = secret || sec.name == e.first;
        if (!secret) env_names.push_back(e.first); // names only, never values
    }
    m_report["workspace"] = {{"path", m_workspace.string()},
                             {"mode", config::to_string(m_opts.workspace_mode)}};
    m_report["limits"] = {{"memory_bytes", m_opts.memory},
                          {"memory_swap_bytes", m_opts.memory},
                          {"nano_cpus", m_opts.nano_cpus},
                          {"pids", m_opts.pids},
                          {"timeout_ms", m_opts.timeout.count()},
                          {"grace_ms", m_opts.grace.count()},
                          {"tmpfs_bytes", m_opts.tmpfs_size},
                          {"output_cap_bytes", m_opts.output_cap},
                          {"nofile", m_opts.nofile},
                          {"nproc", m_opts.nproc},
                          {"user", m_opts.user},
                          {"runtime", m_opts.runtime},
                          {"network", m_opts.network.mode},
                          {"env", env_names}};
    m_report["limits_origin"] = m_opts.origin;
    if (m_ctx.policy) {
        m_report["policy"] = policy::to_json(*m_ctx.policy);
        m_report["policy"]["sha256"] = policy::digest(*m_ctx.policy);
    }
    m_report["ci"] = audit::ci_context([](const std::string& name) -> std::optional<std::string> {
        const char* v = std::getenv(name.c_str());
        return v ? std::optional<std::string>(v) : std::nullopt;
    });
    json caps = json::array();
    for (const auto& g : m_ctx.decision.capabilities)
        caps.push_back(
            {{"capability", g.capability}, {"detail", g.detail}, {"granted_by", g.granted_by}});
    m_report["capabilities"] = caps;
    m_report["secrets"] = {{"names", m_ctx.decision.secret_names},
                           {"inject", m_ctx.decision.secret_inject}};
    m_report["steps"] = m_steps;
    m_report["network"] = network_report();
    m_report["output"] = {{"stdout_bytes", m_output.bytes_seen(docker::StreamId::stdout_)},
                          {"stderr_bytes", m_output.bytes_seen(docker::StreamId::stderr_)},
                          {"kept_bytes", m_output.bytes_written()},
                          {"dropped_bytes", m_output.bytes_dropped()},
                          {"truncated", m_output.truncated()},
                          {"stdout", "logs/stdout.log"},
                          {"stderr", "logs/stderr.log"}};
    {
        std::lock_guard<std::mutex> lock(m_peaks.mu);
        m_report["resources"] = {
            {"memory_peak_bytes", m_peaks.memory},
            {"pids_peak", m_peaks.pids},
            {"cpu_ns", m_peaks.cpu_ns},
            {"samples", m_peaks.samples},
            {"method", "engine stats stream, sampled about once a second from 1 s after start; "
                       "memory is the cgroup's max_usage where the engine reports it"}};
    }
    m_report["duration_ms"] = std::llround(ms_between(m_t0, Clock::now()));
}

void Pipeline::export_telemetry() {
    if (!m_otlp) return;
    std::vector<json> events;
    {
        std::ifstream in(m_out / "events.jsonl");
        for (std::string line;
             std::getline(in, line) && events.size() < telemetry::k_max_log_records;) {
            json e = json::parse(line, nullptr, false);
            if (!e.is_discarded()) events.push_back(std::move(e));
        }
    }
    const auto t0 = Clock::now();
    json result = telemetry::export_run(
        *m_otlp, telemetry::trace_request(m_report, m_trace, m_otlp->service_name),
        telemetry::logs_request(events, m_report, m_trace, m_otlp->service_name));
    m_report["telemetry"] = {
        {"trace_id", m_trace.trace_id},
        {"parent_span_id", m_trace.parent_span_id.empty() ? json() : json(m_trace.parent_span_id)},
        {"duration_ms", std::llround(ms_between(t0, Clock::now()))},
        {"budget_ms", m_otlp->budget.count()},
        {"logs_dropped", telemetry::logs_dropped(m_report, events.size())},
        {"signals", result}};
    for (auto it = result.begin(); it != result.end(); ++it)
        if (it->value("exported", false) == false)
            say("telemetry: " + it.key() + " not exported to " + it->value("url", "") + " (" +
                it->value("error", "") + ")");
}

RunOutcome Pipeline::run() {
    m_report["started_at"] = audit::utc_now_rfc3339();
    RunOutcome out;
    out.run_id = m_run_id;
    std::optional<Error> failure;
    auto run_step = [&](const char* name, Result<void> (Pipeline::*fn)()) {
        if (failure) return;
        auto r = step(name, [&] { return (this->*fn)(); });
        if (!r) failure = r.error();
    };
    run_step("resolve", &Pipeline::resolve);
    if (!failure && m_ctx.refusal) failure = *m_ctx.refusal; // recorded; nothing is started
    run_step("preflight", &Pipeline::preflight);
    run_step("prepare", &Pipeline::prepare);
    run_step("create", &Pipeline::create);
    run_step("verify", &Pipeline::verify);
    run_step("copy-in", &Pipeline::copy_in_step);
    run_step("start-wait", &Pipeline::start_and_wait);
    run_step("collect", &Pipeline::collect);
    (void)step("teardown", [&] {
        teardown();
        return Result<void>{};
    });
    m_output.close();

    if (failure && failure->kind == ErrorKind::cancelled) {
        m_facts.interrupted = true;
        m_class = classify(m_facts);
    }
    json result;
    if (failure && !(m_class && failure->kind == ErrorKind::cancelled)) {
        out.exit_code = exit_code_for(*failure);
        out.message = m_redactor.redact(failure->message);
        result = {{"outcome", failure->kind == ErrorKind::refused ? "refused" : "error"},
                  {"error_kind", util::to_string(failure->kind)},
                  {"message", failure->message}};
        if (m_class)
            result["task"] = {{"outcome", to_string(m_class->outcome)},
                              {"status_code", m_facts.status_code}};
    } else {
        out.exit_code = m_class->exit_code;
        out.message = std::string(to_string(m_class->outcome)) + ": " + m_class->description;
        result = {{"outcome", to_string(m_class->outcome)},
                  {"description", m_class->description},
                  {"status_code", m_facts.status_code},
                  {"oom_killed", m_facts.oom_killed},
                  {"timed_out", m_facts.timed_out}};
        if (!m_facts.start_error.empty()) result["start_error"] = m_facts.start_error;
        if (!m_pending_approval.empty()) {
            result["needs_approval"] = m_pending_approval;
            if (out.exit_code == 0) {
                out.exit_code = exit_code::refused;
                out.message = m_redactor.redact(m_pending_approval);
            }
        }
    }
    result["exit_code"] = out.exit_code;
    m_report["result"] = result;
    m_report["ended_at"] = audit::utc_now_rfc3339();
    if (m_out_ready) {
        assemble_report();
        record_approvals();
        // What went wrong, and the policy's gate rules applied to it (the gate recomputes these
        // from the signed report). A signature comes after the report, so "unsigned" counts as
        // met here when a key was given.
        m_report["violations"] = audit::violations_of(m_report);
        const json values = m_report.contains("policy") ? m_report["policy"]["values"] : json();
        m_report["checks"] = audit::gate_checks(m_report, values, m_ctx.signing ? "pending" : "");
        m_report["verdict"] = audit::verdict_of(m_report["checks"]);
        std::size_t listed = 0;
        for (const auto& v : m_report["violations"])
            if (listed++ < 1000) m_events.append("violation", v);
    }
    m_events.append("run.end",
                    {{"exit_code", out.exit_code},
                     {"message", out.message},
                     {"verdict", m_report.contains("verdict") ? m_report["verdict"] : json()}});
    m_report["events"] = {{"path", "events.jsonl"},
                          {"count", m_events.count()},
                          {"last_digest", m_events.last_digest()}};
    if (!m_events.error().empty()) say(m_events.error());
    m_events.close();
    if (m_out_ready) export_telemetry();
    if (m_out_ready)
        if (auto r = audit::write_json_file(m_out / "report.json", m_report, &m_redactor); !r)
            say(r.error().message);
    if (m_out_ready) out.out_dir = m_out;
    return out;
}

} // namespace

RunOutcome run(docker::Client& client, const config::RunOptions& opts, const RunContext& ctx) {
    Pipeline p(client, opts, ctx);
    return p.run();
}

} // namespace airlock::sandbox
