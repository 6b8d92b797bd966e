# shopcqrs_library(NAME DIR <target_link_libraries arguments>): one static library of the .cc
# files in DIR (below the calling folder), and its link check linkcheck_NAME, which links the
# library *whole* with nothing but what it declares: a library that calls into another one
# without declaring it fails to link there, so the build graph enforces the layers of
# docs/ARCHITECTURE.md. The link checks are part of the default build.
# Sources named in SHOPCQRS_LIBRARY_SKIP (paths below src/, e.g. infra/http/server.cc) are left
# out; only the fuzz build (cmake/fuzz.cmake) sets it.
function(shopcqrs_library NAME DIR)
  file(GLOB SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${DIR}/*.cc)
  foreach(skip IN LISTS SHOPCQRS_LIBRARY_SKIP)
    list(REMOVE_ITEM SOURCES ${PROJECT_SOURCE_DIR}/src/${skip})
  endforeach()
  add_library(${NAME} STATIC ${SOURCES})
  target_include_directories(${NAME} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${NAME} ${ARGN})
  add_executable(linkcheck_${NAME} ${PROJECT_SOURCE_DIR}/cmake/linkcheck_main.cc)
  target_link_libraries(linkcheck_${NAME} PRIVATE "$<LINK_LIBRARY:WHOLE_ARCHIVE,${NAME}>")
endfunction()
