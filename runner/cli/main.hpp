// The command line: `airlock run|policy|gate|approve|keygen|...`.
#pragma once

namespace airlock::cli {

int main(int argc, char** argv);

int run_command(int argc, char** argv);
int clean_command(int argc, char** argv);
int doctor_command(int argc, char** argv);
int policy_command(int argc, char** argv);
int gate_command(int argc, char** argv);
int keygen_command(int argc, char** argv);
int report_command(int argc, char** argv);
int apply_command(int argc, char** argv);
int approve_command(int argc, char** argv);
int images_command(int argc, char** argv);

// airlock's own messages go to stderr as "airlock: ..." lines.
void say(const char* fmt_text);

} // namespace airlock::cli
