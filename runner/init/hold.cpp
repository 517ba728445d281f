// airlock-hold: the whole program of the holder container, which keeps a run's tmpfs secrets
// volume mounted while the secrets are written into it. Static, so its image is one file.
#include <unistd.h>

int main() {
    for (;;)
        pause();
}
