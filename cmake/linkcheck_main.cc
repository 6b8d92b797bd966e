// The program of the link checks (src/infra/CMakeLists.txt, src/adapters/CMakeLists.txt): it does
// nothing; linking it with one whole library and that library's declared dependencies is the check.
int main() { return 0; }
