#include "daemon/cli/cli.hpp"

// A thin main: the command line and everything behind it live in libraries.
int main(int argc, char** argv) { return brickwork::run_cli(argc, argv); }
