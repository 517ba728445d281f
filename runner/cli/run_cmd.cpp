#include "cli/main.hpp"

#include "audit/approval_book.hpp"
#include "audit/ci_context.hpp"
#include "audit/dsse.hpp"
#include "audit/render.hpp"
#include "config/run_options.hpp"
#include "docker/client.hpp"
#include "policy/capability.hpp"
#include "policy/credentials.hpp"
#include "policy/enforce.hpp"
#include "sandbox/classify.hpp"
#include "sandbox/run.hpp"
#include "util/cancel.hpp"
#include "util/read_limited.hpp"
#include "util/units.hpp"

#include <cxxopts.hpp>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <unistd.h>

namespace airlock::cli {

namespace {
void add_value(config::RunRequest& req, const cxxopts::ParseResult& res, const char* flag,
               const char* field) {
    if (res.count(flag)) {
        req.values[field] = res[flag].as<std::string>();
        req.origin[field] = std::string("--") + flag;
    }
}
// Like ccache --show-config: every effective value, and the layer that set it.
void show_config(const config::RunOptions& o, const policy::Policy& p, const policy::Decision& d) {
    auto origin = [&](const char* key) {
        auto it = o.origin.find(key);
        return it == o.origin.end() ? std::string("default") : it->second;
    };
    auto line = [](const char* name, const std::string& value, const std::string& from) {
        std::printf("%-15s = %s  (%s)\n", name, value.c_str(), from.c_str());
    };
    std::printf("# policy: %s\n", p.describe().c_str());
    line("image", o.image, origin("image"));
    line("workspace", o.workspace.string(), origin("workspace"));
    line("workspace_mode", config::to_string(o.workspace_mode), origin("workspace_mode"));
    line("memory", util::format_size(o.memory), origin("memory"));
    line("cpus", policy::format_value(*policy::find_spec("resources/cpus/max"), o.nano_cpus),
         origin("cpus"));
    line("pids", std::to_string(o.pids), origin("pids"));
    line("timeout", util::format_duration(o.timeout), origin("timeout"));
    line("grace", util::format_duration(o.grace), origin("grace"));
    line("output_cap", util::format_size(o.output_cap), origin("output_cap"));
    line("tmpfs_size", util::format_size(o.tmpfs_size), origin("tmpfs_size"));
    line("nofile", std::to_string(o.nofile), origin("nofile"));
    line("nproc", std::to_string(o.nproc), origin("nproc"));
    line("user", o.user, origin("user"));
    std::string runtimes;
    for (const auto& r : o.runtimes)
        runtimes += (runtimes.empty() ? "" : ", ") + r;
    line("runtime", runtimes.empty() ? o.runtime : runtimes + " (first the engine has)",
         origin("runtime"));
    std::string env, secrets;
    for (const auto& n : d.env_names)
        env += (env.empty() ? "" : ", ") + n;
    for (const auto& n : d.secret_names)
        secrets += (secrets.empty() ? "" : ", ") + n;
    line("env", env.empty() ? "(none)" : env, "names only");
    line("secrets", secrets.empty() ? "(none)" : secrets + " as " + d.secret_inject, "names only");
    const auto& n = o.network;
    line("network", n.mode, origin("network"));
    if (n.mode != "none") line("egress_network", n.egress_network, origin("egress_network"));
    if (n.proxied()) {
        auto list = [](const std::vector<std::string>& items) {
            std::string out;
            for (const auto& i : items)
                out += (out.empty() ? "" : ", ") + i;
            return out.empty() ? std::string("(none)") : out;
        };
        line("allow", list(n.allow), "policy network.allow and --allow");
        line("deny", list(n.deny), "policy network.deny and --deny");
        line("methods", list(n.methods), "policy network.methods");
        line("allow_cidrs", list(n.allow_cidrs), "policy network.allow_cidrs and --allow-cidr");
        line("upload_budget", n.upload_budget ? util::format_size(*n.upload_budget) : "none",
             "policy network.upload_budget");
    }
    for (const auto& c : o.credentials) {
        std::string vars;
        for (const auto& [name, value] : c.env)
            vars += (vars.empty() ? "" : ", ") + name + "=" + value;
        line("credential",
             c.name + " -> " + c.upstream + " (" + c.header + " from " + c.secret +
                 (vars.empty() ? "" : "; task gets " + vars) + ")",
             c.origin);
    }
    if (!o.credentials.empty()) line("ca_bundle", o.ca_bundle.string(), origin("ca_bundle"));
    for (const auto& g : d.capabilities)
        line("capability", g.capability + ": " + g.detail, g.granted_by);
}

} // namespace

int run_command(int argc, char** argv) {
    // Everything after "--" is the task's command, untouched.
    int split = argc;
    for (int i = 1; i < argc; ++i)
        if (std::string(argv[i]) == "--") {
            split = i;
            break;
        }
    cxxopts::Options o("airlock run", "Run COMMAND in a disposable, hardened container.");
    o.custom_help("[options]");
    o.positional_help("-- COMMAND [ARGS...]");
    o.add_options()("policy",
                    "policy preset (strict, standard, permissive) or file; repeatable, each "
                    "later one may only tighten (default standard)",
                    cxxopts::value<std::vector<std::string>>(), "P")(
        "secret",
        "inject secret NAME from airlock's environment, or NAME=@FILE; redacted from all "
        "output; repeatable",
        cxxopts::value<std::vector<std::string>>(),
        "NAME[=@FILE]")("task", "task file (JSON) with the same fields as the flags; flags win",
                        cxxopts::value<std::string>(), "FILE")(
        "image", "image to run (default airlock/agent-base:latest)", cxxopts::value<std::string>(),
        "REF")("workspace", "directory given to the task as /workspace (default .)",
               cxxopts::value<std::string>(),
               "DIR")("workspace-mode", "volume (copied in and out; default), bind-ro or bind-rw",
                      cxxopts::value<std::string>(), "MODE")(
        "out", "output directory (default .airlock/runs/<run-id>/)", cxxopts::value<std::string>(),
        "DIR")("env", "pass NAME (from airlock's environment) or NAME=VALUE; repeatable",
               cxxopts::value<std::vector<std::string>>(), "NAME[=VALUE]")(
        "memory", "memory limit, swap included (default 2g)", cxxopts::value<std::string>(),
        "SIZE")("cpus", "CPU limit (default 1)", cxxopts::value<std::string>(),
                "N")("pids", "process limit (default 256)", cxxopts::value<std::string>(), "N")(
        "timeout", "wall-clock limit (default 30m)", cxxopts::value<std::string>(),
        "DURATION")("grace", "time between SIGTERM and SIGKILL at the timeout (default 10s)",
                    cxxopts::value<std::string>(), "DURATION")(
        "user", "numeric UID[:GID], never 0 (default 1000:1000)", cxxopts::value<std::string>(),
        "UID[:GID]")("pull", "missing (default: pull when the engine lacks the image) or never",
                     cxxopts::value<std::string>(), "WHEN")(
        "runtime", "runc (default) or runsc (gVisor)", cxxopts::value<std::string>(), "NAME")(
        "output-cap", "stdout+stderr kept at most (default 64m)", cxxopts::value<std::string>(),
        "SIZE")("tmpfs-size", "size of the writable /tmp (default 256m)",
                cxxopts::value<std::string>(), "SIZE")(
        "network",
        "none (default), allowlist or audit (through the egress proxy), open (needs an "
        "approval)",
        cxxopts::value<std::string>(),
        "MODE")("allow",
                "also allow HOST[:PORTS] (*.domain for subdomains; ports as 80,443), where the "
                "policy lets flags add hosts; repeatable",
                cxxopts::value<std::vector<std::string>>(),
                "HOST[:PORTS]")("deny", "deny HOST[:PORTS]; deny wins over allow; repeatable",
                                cxxopts::value<std::vector<std::string>>(), "HOST[:PORTS]")(
        "allow-cidr", "a private range the proxy may reach, e.g. 10.1.0.0/16; repeatable",
        cxxopts::value<std::vector<std::string>>(), "CIDR")(
        "egress-network", "bridge network the egress proxy joins (default: the engine's bridge)",
        cxxopts::value<std::string>(), "NAME")(
        "credential",
        "use the policy's credential endpoint NAME: the egress proxy holds its key (from the "
        "variable the policy names, or FILE) and the task reaches it at "
        "http://127.0.0.1:3129/NAME/; repeatable",
        cxxopts::value<std::vector<std::string>>(), "NAME[=@FILE]")(
        "sign-key",
        "Ed25519 private key (airlock keygen) to sign the run: OUT/report.dsse.json (default "
        "$AIRLOCK_SIGNING_KEY)",
        cxxopts::value<std::string>(), "FILE")(
        "artifact",
        "copy PATH or GLOB (relative to /workspace) out of the container into OUT/artifacts/ "
        "after the task; repeatable",
        cxxopts::value<std::vector<std::string>>(),
        "PATH_OR_GLOB")("ca-bundle",
                        "CA certificates (PEM) credential upstreams must verify against (default "
                        "/etc/ssl/certs/ca-certificates.crt)",
                        cxxopts::value<std::string>(), "FILE")(
        "approvals",
        "a signed approval (airlock approve) for capabilities this run needs; repeatable",
        cxxopts::value<std::vector<std::string>>(), "FILE")(
        "approve",
        "approve capability CAP by flag, where the policy's approvals.flag allows it; repeatable",
        cxxopts::value<std::vector<std::string>>(),
        "CAP")("no-prompt", "never ask on the terminal; refuse what needs an approval")(
        "q,quiet", "do not echo the task's output on the terminal")(
        "show-config",
        "print the effective settings and where each came from (default, policy layer, task "
        "file, flag), then exit without running")("h,help", "show this help");
    cxxopts::ParseResult res;
    try {
        res = o.parse(split, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "airlock run: %s (see airlock run --help)\n", e.what());
        return sandbox::exit_code::usage;
    }
    if (res.count("help")) {
        std::fputs(o.help().c_str(), stdout);
        return 0;
    }
    if (!res.unmatched().empty()) {
        std::fprintf(stderr, "airlock run: unexpected \"%s\" (put the command after --)\n",
                     res.unmatched().front().c_str());
        return sandbox::exit_code::usage;
    }

    config::RunRequest flags;
    add_value(flags, res, "image", "image");
    add_value(flags, res, "workspace", "workspace");
    add_value(flags, res, "workspace-mode", "workspace_mode");
    add_value(flags, res, "out", "out");
    add_value(flags, res, "memory", "memory");
    add_value(flags, res, "cpus", "cpus");
    add_value(flags, res, "pids", "pids");
    add_value(flags, res, "timeout", "timeout");
    add_value(flags, res, "grace", "grace");
    add_value(flags, res, "user", "user");
    add_value(flags, res, "runtime", "runtime");
    add_value(flags, res, "pull", "pull");
    add_value(flags, res, "output-cap", "output_cap");
    add_value(flags, res, "tmpfs-size", "tmpfs_size");
    if (res.count("env")) {
        flags.env = res["env"].as<std::vector<std::string>>();
        flags.env_origin = "--env";
    }
    if (res.count("secret")) flags.secrets = res["secret"].as<std::vector<std::string>>();
    add_value(flags, res, "network", "network");
    add_value(flags, res, "egress-network", "egress_network");
    add_value(flags, res, "ca-bundle", "ca_bundle");
    for (const auto& [flag, key] :
         std::vector<std::pair<std::string, std::string>>{{"allow", "allow"},
                                                          {"deny", "deny"},
                                                          {"allow-cidr", "allow_cidrs"},
                                                          {"credential", "credentials"},
                                                          {"artifact", "artifacts"}})
        if (res.count(flag))
            for (const auto& item : res[flag].as<std::vector<std::string>>())
                flags.lists[key].emplace_back(item, "--" + flag);
    for (int i = split + 1; i < argc; ++i)
        flags.command.emplace_back(argv[i]);
    flags.command_origin = "command line";

    config::RunRequest req;
    if (res.count("task")) {
        auto task = config::parse_task_file(res["task"].as<std::string>());
        if (!task) {
            std::fprintf(stderr, "airlock: %s\n", task.error().message.c_str());
            return sandbox::exit_code::usage;
        }
        req = std::move(*task);
    }
    req = config::merge(std::move(req), flags);
    auto opts = config::resolve(req, [](const std::string& name) -> std::optional<std::string> {
        const char* v = std::getenv(name.c_str());
        return v ? std::optional<std::string>(v) : std::nullopt;
    });
    if (!opts) {
        std::fprintf(stderr, "airlock: %s\n", opts.error().message.c_str());
        return opts.error().kind == util::ErrorKind::refused ? sandbox::exit_code::refused
                                                             : sandbox::exit_code::usage;
    }

    std::vector<std::string> specs;
    if (res.count("policy")) specs = res["policy"].as<std::vector<std::string>>();
    auto pol = policy::load(specs);
    if (!pol) {
        std::fprintf(stderr, "%s\n", pol.error().message.c_str());
        return sandbox::exit_code::usage;
    }
    // Approvals: signed files checked against the policy's approvers and this run's identity,
    // flags the policy allows, and a prompt when a person is at a terminal.
    std::vector<std::string> flag_approvals;
    if (res.count("approve"))
        for (const auto& c : res["approve"].as<std::vector<std::string>>()) {
            if (auto why = policy::capability_problem(c)) {
                std::fprintf(stderr,
                             "airlock: --approve \"%s\" %s (airlock approve --list shows the "
                             "capabilities)\n",
                             c.c_str(), why->c_str());
                return sandbox::exit_code::usage;
            }
            flag_approvals.push_back(c);
        }
    std::vector<audit::PresentedApproval> presented;
    if (res.count("approvals")) {
        const auto env_lookup = [](const std::string& name) -> std::optional<std::string> {
            const char* v = std::getenv(name.c_str());
            return v ? std::optional<std::string>(v) : std::nullopt;
        };
        const nlohmann::json ci = audit::ci_context(env_lookup);
        audit::ApprovalUse use;
        use.where = "this run";
        use.now = std::time(nullptr);
        if (ci.is_object()) {
            if (ci["repository"].is_string()) use.repository = ci["repository"];
            if (ci["commit"].is_string()) use.commit = ci["commit"];
            if (ci["run_id"].is_string()) use.runs.push_back(ci["run_id"]);
        }
        auto checked = audit::check_approval_files(res["approvals"].as<std::vector<std::string>>(),
                                                   pol->get("approvals/approvers"), use);
        if (!checked) {
            std::fprintf(stderr, "airlock: %s\n", checked.error().message.c_str());
            return sandbox::exit_code::usage;
        }
        presented = std::move(*checked);
        for (const auto& p : presented)
            if (!p.valid)
                std::fprintf(stderr, "airlock: approval %s refused: %s\n", p.source.c_str(),
                             p.refusal.c_str());
    }
    audit::Prompt prompt;
    if (!res.count("no-prompt") && ::isatty(STDIN_FILENO) && ::isatty(STDERR_FILENO))
        prompt = [](const std::string& capability, const std::string& detail) {
            std::fprintf(stderr,
                         "airlock: this run needs an approval for %s (%s).\n"
                         "airlock: approve it for this run? [y/N] ",
                         capability.c_str(), detail.c_str());
            std::fflush(stderr);
            char line[64] = {};
            if (!std::fgets(line, sizeof line, stdin)) return false;
            const std::string answer(line);
            return answer == "y\n" || answer == "Y\n" || answer == "yes\n" || answer == "YES\n";
        };
    audit::ApprovalBook approvals(*pol, std::move(presented), flag_approvals, prompt);
    std::optional<util::Error> refusal;
    auto decision = policy::enforce(*pol, req, *opts, approvals);
    if (!decision) {
        if (decision.error().kind != util::ErrorKind::refused) {
            std::fprintf(stderr, "airlock: %s\n", decision.error().message.c_str());
            return sandbox::exit_code::usage;
        }
        std::fprintf(stderr, "airlock: refused: %s\n", decision.error().message.c_str());
        // Without approvals presented, a refusal leaves nothing behind; with them, the refusal
        // and the approvals' fate are recorded in OUT (no engine object is made).
        if (!approvals.anything_presented()) return sandbox::exit_code::refused;
        refusal = decision.error();
        decision = policy::Decision{};
    }

    // Under a looser policy, what goes beyond standard is still named in the report; under
    // standard itself there is nothing to add.
    if (!refusal && pol->describe() != "preset standard")
        if (auto standard = policy::load({"standard"}); standard)
            for (auto& g : policy::beyond(*standard, *opts, "policy " + pol->describe())) {
                bool known = false;
                for (const auto& have : decision->capabilities)
                    known = known || have.capability == g.capability;
                if (!known) decision->capabilities.push_back(std::move(g));
            }
    if (!refusal) {
        auto credentials =
            policy::resolve_credentials(*pol, req, *opts, [](const std::string& name) {
                const char* v = std::getenv(name.c_str());
                return v ? std::optional<std::string>(v) : std::nullopt;
            });
        if (!credentials) {
            std::fprintf(stderr, "airlock: %s%s\n",
                         credentials.error().kind == util::ErrorKind::refused ? "refused: " : "",
                         credentials.error().message.c_str());
            return credentials.error().kind == util::ErrorKind::refused
                       ? sandbox::exit_code::refused
                       : sandbox::exit_code::usage;
        }
        opts->credentials = std::move(*credentials);
    }
    if (res.count("show-config") && !refusal) {
        show_config(*opts, *pol, *decision);
        return 0;
    }

    // The signing key is checked now, so a run never ends unsigned for want of a usable key.
    std::string sign_key;
    if (res.count("sign-key"))
        sign_key = res["sign-key"].as<std::string>();
    else if (const char* k = std::getenv("AIRLOCK_SIGNING_KEY"); k && *k)
        sign_key = k;
    if (!sign_key.empty()) {
        std::string pem;
        if (util::read_limited(sign_key, 64u << 10, pem) != util::ReadStatus::ok) {
            std::fprintf(stderr,
                         "airlock: --sign-key %s: cannot be read (make one with `airlock keygen "
                         "--out PREFIX`)\n",
                         sign_key.c_str());
            return sandbox::exit_code::usage;
        }
        if (auto probe = audit::sign_bytes(pem, sign_key, "airlock"); !probe) {
            std::fprintf(stderr, "airlock: --sign-key: %s\n", probe.error().message.c_str());
            return sandbox::exit_code::usage;
        }
    }

    auto endpoint = docker::parse_endpoint(docker::endpoint_env_from_process());
    if (!endpoint) {
        std::fprintf(stderr, "airlock: %s\n", endpoint.error().message.c_str());
        return sandbox::exit_code::usage;
    }
    util::install_interrupt_handlers();
    docker::Client client(*endpoint);
    sandbox::RunContext ctx;
    ctx.echo = res.count("quiet") ? sandbox::Echo::no : sandbox::Echo::yes;
    ctx.say = [](const std::string& s) { std::fprintf(stderr, "airlock: %s\n", s.c_str()); };
    ctx.cwd = std::filesystem::current_path();
    ctx.policy = &*pol;
    ctx.decision = *decision;
    ctx.approvals = &approvals;
    ctx.signing = !sign_key.empty();
    ctx.refusal = refusal;
    // On GitHub Actions the task's output must not be able to issue workflow commands.
    const char* gha = std::getenv("GITHUB_ACTIONS");
    const bool github = gha && std::string(gha) == "true";
    std::string token;
    if (github) {
        token = audit::stop_commands_token();
        std::printf("::stop-commands::%s\n", token.c_str());
        std::fflush(stdout);
    }
    auto outcome = sandbox::run(client, *opts, ctx);
    if (github) {
        std::printf("::%s::\n", token.c_str());
        std::fflush(stdout);
    }
    int exit_code = outcome.exit_code;
    if (!outcome.out_dir.empty()) {
        // Renderings first: the signature covers every file in OUT.
        if (auto r = audit::write_renderings(outcome.out_dir); !r)
            std::fprintf(stderr, "airlock: %s\n", r.error().message.c_str());
        if (!sign_key.empty()) {
            if (auto r = audit::sign_run(outcome.out_dir, sign_key); !r) {
                std::fprintf(stderr, "airlock: signing the run failed: %s\n",
                             r.error().message.c_str());
                if (exit_code == 0) exit_code = sandbox::exit_code::usage;
            }
        }
        if (github)
            if (auto report = audit::read_report(outcome.out_dir); report) {
                // GitHub shows at most 10 error annotations per step: the first ones count.
                int shown = 0;
                for (const auto& v : report->value("violations", nlohmann::json::array()))
                    if (shown++ < 10) std::printf("%s\n", audit::annotation(v).c_str());
                std::fflush(stdout);
            }
    }
    std::fprintf(stderr, "airlock: run %s: %s (exit %d)\n", outcome.run_id.c_str(),
                 outcome.message.c_str(), exit_code);
    if (!outcome.out_dir.empty())
        std::fprintf(stderr, "airlock: output in %s\n", outcome.out_dir.c_str());
    return exit_code;
}

} // namespace airlock::cli
