#include <cstdio>
int main() { std::puts("eplb-gen " EPLB_VERSION); return 0; }
