# SPDX-License-Identifier: MIT
# cmake -DINPUT=file -DOUTPUT=file.cpp -DSYMBOL=networkd::name -P embed_text.cmake
# Writes a .cpp defining `extern const char* const SYMBOL` as the input's
# text in one raw string literal (the file is kept apart for readability).
file(READ "${INPUT}" text)
set(delim "nwd_embed")
string(FIND "${text}" ")${delim}\"" found)
if(NOT found EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw string end )${delim}\"")
endif()
string(REGEX MATCH "^(.*)::([^:]+)$" unused "${SYMBOL}")
set(ns "${CMAKE_MATCH_1}")
set(name "${CMAKE_MATCH_2}")
file(WRITE "${OUTPUT}.tmp"
  "// Generated from ${INPUT} by cmake/embed_text.cmake: do not edit.\n"
  "namespace ${ns} {\n"
  "extern const char* const ${name};\n"
  "const char* const ${name} = R\"${delim}(${text})${delim}\";\n"
  "} // namespace ${ns}\n")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
