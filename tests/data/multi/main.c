// The other half: calls into helper.c, so linking must resolve the symbol.
int helper_scale(int x);

int main(int argc, char **argv) {
  int total = 0;
  for (int i = 0; i < argc; ++i) total += helper_scale(i);
  return total;
}
