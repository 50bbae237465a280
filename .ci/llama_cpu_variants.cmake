# Included by llama-cpp-python's top-level project (CMAKE_PROJECT_llama_cpp_INCLUDE, see the Makefile's
# llama-wheel-dispatch): at the end of its configuration, install every CPU-backend variant that
# GGML_CPU_ALL_VARIANTS defined (those .ci/select_cpu_variants.py kept) into the wheel's
# llama_cpp/lib, beside libggml-base (the binding installs only a target named ggml-cpu, which that
# option does not define).
function(kirag_install_cpu_variants)
    foreach(variant x64 sse42 sandybridge ivybridge piledriver haswell skylakex cannonlake
            cascadelake icelake cooperlake zen4 alderlake sapphirerapids)
        if(TARGET ggml-cpu-${variant})
            llama_cpp_python_install_target(ggml-cpu-${variant})
        endif()
    endforeach()
endfunction()
cmake_language(DEFER CALL kirag_install_cpu_variants)
