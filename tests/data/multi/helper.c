// One half of a two-file program: tests link the modules of a directory.
int helper_scale(int x) { return 3 * x + 1; }
