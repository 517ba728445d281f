// Everything a run creates on the engine, registered the moment it exists and removed by one
// teardown path, whatever happened (success, failure, timeout, signal).
#pragma once

#include "docker/client.hpp"

#include <mutex>
#include <string>
#include <vector>

namespace airlock::sandbox {

class Resources {
public:
    explicit Resources(docker::Client& client) : m_client(client) {}
    ~Resources() { (void)teardown(); }
    Resources(const Resources&) = delete;
    Resources& operator=(const Resources&) = delete;

    void add_container(const std::string& id);
    void add_volume(const std::string& name);
    void add_network(const std::string& id);

    // Removes containers (forced), then volumes and networks. Not cut short by interrupts.
    // Returns one message per object that could not be removed.
    std::vector<std::string> teardown();
    std::size_t removed() const { return m_removed; }

private:
    docker::Client& m_client;
    std::mutex m_mu;
    std::vector<std::string> m_containers, m_volumes, m_networks;
    std::size_t m_removed = 0;
};

struct CleanReport {
    std::size_t containers = 0, volumes = 0, networks = 0;
    std::vector<std::string> errors;
};

// Removes every object labelled io.airlock.run (=run_id when given): what a killed runner left.
util::Result<CleanReport> clean(docker::Client& client, const std::string& run_id);

} // namespace airlock::sandbox
