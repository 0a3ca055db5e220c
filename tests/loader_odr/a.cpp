// Placeholder until the loader lands; replaced by the loader ODR test.
int odr_a() { return 0; }
