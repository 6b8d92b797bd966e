// The program of the link checks (cmake/shopcqrs_library.cmake): it does nothing; linking it with
// one whole library and that library's declared dependencies is the check.
int main() { return 0; }
