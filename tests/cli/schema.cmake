# JSON Schema checks (include()d from tests/cli/CMakeLists.txt): specs/gw.schema.json must accept
# the demo spec and the valid samples, and reject each invalid sample for the reason it states.
# That the schema declares the same keys as the reader is tested in tests/unit/spec_schema_test.cpp.

# schema_check.py needs tomllib (Python 3.11) and jsonschema (Debian: python3-jsonschema). Prefer
# the interpreter CMake found, but only if it has both: a pyenv or venv python often lacks
# jsonschema, while Debian's /usr/bin/python3 has it once the package is installed.
set(GW_SCHEMA_PYTHON "")
foreach(candidate IN ITEMS "${Python3_EXECUTABLE}" /usr/bin/python3)
  if(candidate AND NOT GW_SCHEMA_PYTHON AND EXISTS "${candidate}")
    execute_process(COMMAND "${candidate}" -c "import tomllib, jsonschema, yaml"
                    RESULT_VARIABLE gw_schema_probe OUTPUT_QUIET ERROR_QUIET)
    if(gw_schema_probe EQUAL 0)
      set(GW_SCHEMA_PYTHON "${candidate}")
    endif()
  endif()
endforeach()
if(NOT GW_SCHEMA_PYTHON)
  # Still register the tests: schema_check.py exits 77 without jsonschema, which CTest reports
  # as skipped rather than silently dropping the checks.
  set(GW_SCHEMA_PYTHON /usr/bin/python3)
  message(STATUS "JSON Schema tests will be skipped: no python3 with tomllib and jsonschema "
                 "(apt-get install python3-jsonschema)")
endif()

set(GW_SCHEMA_CHECK ${PROJECT_SOURCE_DIR}/tests/cli/schema_check.py)
set(GW_SCHEMA_JSON ${PROJECT_SOURCE_DIR}/specs/gw.schema.json)
file(GLOB GW_SCHEMA_VALID CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/data/schema/valid-*.toml)
file(GLOB GW_SCHEMA_INVALID CONFIGURE_DEPENDS
     ${PROJECT_SOURCE_DIR}/tests/data/schema/invalid-*.toml)

add_test(NAME schema.demo_spec_is_valid
         COMMAND ${GW_SCHEMA_PYTHON} ${GW_SCHEMA_CHECK} ${GW_SCHEMA_JSON}
                 ${PROJECT_SOURCE_DIR}/specs/demo.toml)
add_test(NAME schema.valid_samples_are_accepted
         COMMAND ${GW_SCHEMA_PYTHON} ${GW_SCHEMA_CHECK} ${GW_SCHEMA_JSON} ${GW_SCHEMA_VALID})
set(gw_schema_tests schema.demo_spec_is_valid schema.valid_samples_are_accepted)
# One test per invalid sample, so a failure names the sample the schema wrongly accepts.
foreach(sample IN LISTS GW_SCHEMA_INVALID)
  get_filename_component(name ${sample} NAME_WE)
  add_test(NAME schema.rejects.${name}
           COMMAND ${GW_SCHEMA_PYTHON} ${GW_SCHEMA_CHECK} --expect-invalid ${GW_SCHEMA_JSON}
                   ${sample})
  list(APPEND gw_schema_tests schema.rejects.${name})
endforeach()
# The x-gw-* extensions schema, on OpenAPI samples (valid-*.yaml, invalid-*.yaml).
set(GW_OPENAPI_SCHEMA_JSON ${PROJECT_SOURCE_DIR}/specs/gw-openapi.schema.json)
file(GLOB GW_OPENAPI_SCHEMA_VALID CONFIGURE_DEPENDS
     ${PROJECT_SOURCE_DIR}/tests/data/openapi/extensions/valid-*)
file(GLOB GW_OPENAPI_SCHEMA_INVALID CONFIGURE_DEPENDS
     ${PROJECT_SOURCE_DIR}/tests/data/openapi/extensions/invalid-*)
add_test(NAME schema.openapi_extensions_are_accepted
         COMMAND ${GW_SCHEMA_PYTHON} ${GW_SCHEMA_CHECK} ${GW_OPENAPI_SCHEMA_JSON}
                 ${GW_OPENAPI_SCHEMA_VALID})
list(APPEND gw_schema_tests schema.openapi_extensions_are_accepted)
foreach(sample IN LISTS GW_OPENAPI_SCHEMA_INVALID)
  get_filename_component(name ${sample} NAME_WE)
  add_test(NAME schema.openapi_rejects.${name}
           COMMAND ${GW_SCHEMA_PYTHON} ${GW_SCHEMA_CHECK} --expect-invalid ${GW_OPENAPI_SCHEMA_JSON}
                   ${sample})
  list(APPEND gw_schema_tests schema.openapi_rejects.${name})
endforeach()
set_tests_properties(${gw_schema_tests} PROPERTIES SKIP_RETURN_CODE 77 LABELS schema)
