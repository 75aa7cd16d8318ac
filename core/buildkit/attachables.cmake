# The session attachables (FileSync, FileSend, Auth, Secrets, SSH forwarding,
# the content store of local cache directories) and their tests. Included
# from core/buildkit/CMakeLists.txt after envd_buildkit is defined.
target_sources(envd_buildkit PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/patterns.cpp
  ${CMAKE_CURRENT_LIST_DIR}/request_metadata.cpp
  ${CMAKE_CURRENT_LIST_DIR}/fsutil_stat.cpp
  ${CMAKE_CURRENT_LIST_DIR}/filesync.cpp
  ${CMAKE_CURRENT_LIST_DIR}/filesend.cpp
  ${CMAKE_CURRENT_LIST_DIR}/auth.cpp
  ${CMAKE_CURRENT_LIST_DIR}/secrets.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ssh_forward.cpp
  ${CMAKE_CURRENT_LIST_DIR}/content_store.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cache_dirs.cpp
)

if(ENVD_BUILD_TESTS)
  add_executable(envd_buildkit_attachables_test
    ${CMAKE_CURRENT_LIST_DIR}/patterns_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/fsutil_stat_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/filesync_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/filesend_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/auth_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/secrets_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/ssh_forward_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/content_store_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/cache_dirs_test.cpp
  )
  target_link_libraries(envd_buildkit_attachables_test PRIVATE envd::buildkit GTest::gtest_main)
  gtest_discover_tests(envd_buildkit_attachables_test)
endif()
