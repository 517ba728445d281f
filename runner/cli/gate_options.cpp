#include "cli/gate_options.hpp"

#include "audit/dsse.hpp"
#include "policy/policy.hpp"
#include "util/read_limited.hpp"

namespace airlock::cli {

util::Result<audit::GateOptions> gate_options(const std::string& out,
                                              const std::vector<std::string>& policies,
                                              const std::optional<std::string>& pubkey_file,
                                              const std::vector<std::string>& approvals) {
    audit::GateOptions options;
    options.out = out;
    options.approval_files = approvals;
    if (!policies.empty()) {
        auto p = policy::load(policies);
        if (!p)
            return util::make_error(util::ErrorKind::invalid_input,
                                    p.error().message + " (check it with `airlock policy lint`)");
        options.policy = audit::GatePolicy{"policy " + p->describe(), policy::to_json(*p)["values"],
                                           policy::digest(*p)};
    }
    if (pubkey_file) {
        std::string pem;
        if (util::read_limited(*pubkey_file, 64 * 1024, pem) != util::ReadStatus::ok)
            return util::make_error(util::ErrorKind::invalid_input,
                                    *pubkey_file +
                                        ": cannot read the public key (give the PREFIX.pub that "
                                        "`airlock keygen` wrote)");
        if (auto id = audit::public_key_id(pem, *pubkey_file); !id) return id.error();
        options.public_key = pem;
        options.public_key_name = *pubkey_file;
    }
    return options;
}

util::Result<audit::GateOptions> gate_options(const cxxopts::ParseResult& res) {
    const auto list = [&res](const char* name) {
        return res.count(name) ? res[name].as<std::vector<std::string>>()
                               : std::vector<std::string>{};
    };
    return gate_options(res["out"].as<std::vector<std::string>>().front(), list("policy"),
                        res.count("pubkey")
                            ? std::optional<std::string>(res["pubkey"].as<std::string>())
                            : std::nullopt,
                        list("approvals"));
}

} // namespace airlock::cli
