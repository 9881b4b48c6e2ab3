#pragma once
namespace brickwork {
// Parses the command line (contract section 8) and runs the subcommand.
// Returns the process exit code.
int run_cli(int argc, char** argv);
}  // namespace brickwork
