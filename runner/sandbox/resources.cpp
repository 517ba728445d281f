#include "sandbox/resources.hpp"

#include "sandbox/spec.hpp"

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

std::vector<std::string> Resources::teardown() {
    std::lock_guard<std::mutex> lock(m_mu);
    std::vector<std::string> errors;
    m_client.set_interruptible(docker::Interruptible::no);
    auto gone = [](const util::Result<void>& r) {
        return r.ok() || r.error().kind == util::ErrorKind::not_found;
    };
    for (const auto& id : m_containers) {
        auto r = m_client.container_remove(id, docker::Force::yes);
        // A removal already in progress (conflict) finishes on its own; retry once to be sure.
        if (!r.ok() && r.error().kind == util::ErrorKind::conflict)
            r = m_client.container_remove(id, docker::Force::yes);
        if (gone(r))
            ++m_removed;
        else
            errors.push_back("container " + id.substr(0, 12) + ": " + r.error().message);
    }
    for (const auto& name : m_volumes) {
        auto r = m_client.volume_remove(name, docker::Force::yes);
        if (gone(r))
            ++m_removed;
        else
            errors.push_back("volume " + name + ": " + r.error().message);
    }
    for (const auto& id : m_networks) {
        auto r = m_client.network_remove(id);
        if (gone(r))
            ++m_removed;
        else
            errors.push_back("network " + id + ": " + r.error().message);
    }
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
