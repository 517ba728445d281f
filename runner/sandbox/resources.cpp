#include "sandbox/resources.hpp"

#include "sandbox/spec.hpp"

#include <atomic>
#include <functional>
#include <optional>
#include <thread>

namespace airlock::sandbox {

void Resources::add_container(const std::string& id) {
    std::lock_guard<std::mutex> lock(m_mu);
    m_containers.push_back(id);
}
void Resources::add_volume(const std::string& name) {
    std::lock_guard<std::mutex> lock(m_mu);
    m_volumes.push_back(name);
}
void Resources::add_network(const std::string& id) {
    std::lock_guard<std::mutex> lock(m_mu);
    m_networks.push_back(id);
}

namespace {
// Runs fn on every item at once (a run has a handful of objects; each removal is a round trip
// the engine spends most of its time on), and returns the messages of those that failed.
std::vector<std::string>
remove_all(const std::vector<std::string>& items,
           const std::function<std::optional<std::string>(const std::string&)>& fn) {
    std::vector<std::optional<std::string>> results(items.size());
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < items.size(); ++i)
        threads.emplace_back([&, i] { results[i] = fn(items[i]); });
    for (auto& t : threads)
        t.join();
    std::vector<std::string> errors;
    for (auto& r : results)
        if (r) errors.push_back(std::move(*r));
    return errors;
}
} // namespace

std::vector<std::string> Resources::teardown() {
    std::lock_guard<std::mutex> lock(m_mu);
    m_client.set_interruptible(docker::Interruptible::no);
    auto gone = [](const util::Result<void>& r) {
        return r.ok() || r.error().kind == util::ErrorKind::not_found;
    };
    std::atomic<std::size_t> removed{0};
    // Containers first: a volume or network in use cannot go.
    auto errors =
        remove_all(m_containers, [&](const std::string& id) -> std::optional<std::string> {
            auto r = m_client.container_remove(id, docker::Force::yes);
            // A removal already in progress (conflict) finishes on its own; retry once to be sure.
            if (!r.ok() && r.error().kind == util::ErrorKind::conflict)
                r = m_client.container_remove(id, docker::Force::yes);
            if (gone(r)) {
                ++removed;
                return std::nullopt;
            }
            return "container " + id.substr(0, 12) + ": " + r.error().message;
        });
    for (auto& e :
         remove_all(m_volumes, [&](const std::string& name) -> std::optional<std::string> {
             auto r = m_client.volume_remove(name, docker::Force::yes);
             if (gone(r)) {
                 ++removed;
                 return std::nullopt;
             }
             return "volume " + name + ": " + r.error().message;
         }))
        errors.push_back(std::move(e));
    for (const auto& id : m_networks) {
        auto r = m_client.network_remove(id);
        if (gone(r))
            ++removed;
        else
            errors.push_back("network " + id + ": " + r.error().message);
    }
    m_removed += removed.load();
    m_containers.clear();
    m_volumes.clear();
    m_networks.clear();
    return errors;
}

util::Result<CleanReport> clean(docker::Client& client, const std::string& run_id) {
    CleanReport rep;
    auto containers = client.containers_by_label(k_label_run, run_id);
    if (!containers) return containers.error();
    for (const auto& c : *containers) {
        auto r = client.container_remove(c.value("Id", ""), docker::Force::yes);
        if (r.ok() || r.error().kind == util::ErrorKind::not_found)
            ++rep.containers;
        else
            rep.errors.push_back(r.error().message);
    }
    auto volumes = client.volumes_by_label(k_label_run, run_id);
    if (!volumes) return volumes.error();
    for (const auto& v : *volumes) {
        auto r = client.volume_remove(v.value("Name", ""), docker::Force::yes);
        if (r.ok() || r.error().kind == util::ErrorKind::not_found)
            ++rep.volumes;
        else
            rep.errors.push_back(r.error().message);
    }
    auto networks = client.networks_by_label(k_label_run, run_id);
    if (!networks) return networks.error();
    for (const auto& n : *networks) {
        auto r = client.network_remove(n.value("Id", ""));
        if (r.ok() || r.error().kind == util::ErrorKind::not_found)
            ++rep.networks;
        else
            rep.errors.push_back(r.error().message);
    }
    return rep;
}

} // namespace airlock::sandbox
