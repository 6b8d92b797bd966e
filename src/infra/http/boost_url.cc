// Boost.URL is used header-only: its sources are compiled once, here (Debian ships the headers
// in libboost1.81-dev; the compiled library is a separate package we do not need).
#include <boost/url/src.hpp>
