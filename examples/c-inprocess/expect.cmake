# Runs example_c_inprocess on one request at a fixed time and compares it
# with an .expect file, whose first line is "exit N" and whose other lines
# must be, exactly and in order, the program's lines before its "result:"
# line. That last line must be "result: " followed by exactly what
# `trine check --json` prints for the same request.
#   cmake -DPROGRAM=... -DTRINE=... -DPOLICY=... -DREQUEST=... -DEXPECT=...
#         -P expect.cmake
set(now 1767225600)
execute_process(COMMAND ${PROGRAM} ${POLICY} ${REQUEST} ${now}
  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
execute_process(COMMAND ${TRINE} check --policy ${POLICY} --request ${REQUEST}
  --now ${now} --json
  OUTPUT_VARIABLE cli OUTPUT_STRIP_TRAILING_WHITESPACE)

file(READ ${EXPECT} expected)
string(REGEX MATCH "^exit [0-9]+\n" status_line "${expected}")
string(LENGTH "${status_line}" skip)
string(SUBSTRING "${expected}" ${skip} -1 lines)
if(NOT status_line STREQUAL "exit ${rc}\n")
  message(FATAL_ERROR "expected ${status_line}got exit ${rc}\n${out}${err}")
endif()
set(want "${lines}result: ${cli}\n")
if(NOT out STREQUAL want)
  message(FATAL_ERROR "output differs.\nexpected:\n${want}got:\n${out}${err}")
endif()
