int odr_b() { return 0; }
