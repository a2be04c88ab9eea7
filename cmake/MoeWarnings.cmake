# Warnings for the project's own targets (not for third-party headers).
function(moe_warnings target)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX,C>:-Wall -Wextra -Wno-unused-parameter>)
endfunction()
