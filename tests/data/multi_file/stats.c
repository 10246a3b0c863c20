double mean(const double *values, int count) {
  double sum = 0;
  for (int i = 0; i < count; ++i) sum += values[i];
  return count ? sum / count : 0;
}

double variance(const double *values, int count) {
  double m = mean(values, count), sum = 0;
  for (int i = 0; i < count; ++i) sum += (values[i] - m) * (values[i] - m);
  return count ? sum / count : 0;
}
