# The libraries forkgym's server-side binaries link statically, as INTERFACE
# targets: forkgym_llvm (LLVM 19's passes, code generation for the host and
# NVPTX), forkgym_seccomp, forkgym_libelf and forkgym_nettle.
#
# Why statically: a worker is forked for every episode, every env.fork() and
# every candidate a search tries. fork(2) copies, for each private mapping
# that holds memory of its own, its page-table entries and one anon_vma link
# per ancestor process still alive (a search keeps its checkpoints alive),
# and closing the fork tears them all down. Every shared library is two such
# mappings (its relocated data and its .data/.bss), and libLLVM.so.19.1 also
# loads ten libraries forkgym never calls (z3, icu, xml2, libedit, ...). The
# executables stay position-independent (the zygote's layout is still
# randomised at each start), and keep their symbol table, which names LLVM's
# frames in crash stacks (crash_stack.py). The Python extension links none of
# these. What it saves: README.md, "Performance".
#
# Debian's -dev packages ship the archives beside the shared libraries.

# The LLVM components the passes, observations and code generation use
# (passes/llvm/llvm_init.cc initialises the host target and NVPTX).
set(FORKGYM_LLVM_COMPONENTS
  core irreader bitreader bitwriter asmparser passes linker object support target
  ${LLVM_NATIVE_ARCH})
if("NVPTX" IN_LIST LLVM_TARGETS_TO_BUILD)
  list(APPEND FORKGYM_LLVM_COMPONENTS NVPTX)
endif()

function(forkgym_find_archive variable name)
  find_library(FORKGYM_ARCHIVE_${name} NAMES lib${name}.a)
  if(NOT FORKGYM_ARCHIVE_${name})
    message(FATAL_ERROR "lib${name}.a not found: forkgym links it statically; install its Debian -dev package "
                        "(scripts/setup lists them)")
  endif()
  set(${variable} ${FORKGYM_ARCHIVE_${name}} PARENT_SCOPE)
endfunction()

# forkgym_static_library(<target> <name>...): an INTERFACE target linking
# lib<name>.a for each name: the library, then the archives it needs in turn
# (pkg-config --static --libs).
function(forkgym_static_library target)
  add_library(${target} INTERFACE)
  foreach(name ${ARGN})
    forkgym_find_archive(archive ${name})
    target_link_libraries(${target} INTERFACE ${archive})
  endforeach()
endfunction()

forkgym_static_library(forkgym_seccomp seccomp)
forkgym_static_library(forkgym_libelf elf z)
forkgym_static_library(forkgym_nettle nettle)

# LLVMSupport, as Debian exports it, links the shared libz3 (for the static
# analyzer's solver, which nothing here calls: its object is never pulled
# from the archive), zlib and zstd: link the two archives instead.
get_target_property(support_links LLVMSupport INTERFACE_LINK_LIBRARIES)
list(FILTER support_links EXCLUDE REGEX "z3|^ZLIB::|^zstd::")
forkgym_find_archive(zlib_archive z)
forkgym_find_archive(zstd_archive zstd)
set_property(TARGET LLVMSupport PROPERTY INTERFACE_LINK_LIBRARIES ${support_links} ${zlib_archive} ${zstd_archive})

llvm_map_components_to_libnames(FORKGYM_LLVM_ARCHIVES ${FORKGYM_LLVM_COMPONENTS})
add_library(forkgym_llvm INTERFACE)
target_link_libraries(forkgym_llvm INTERFACE ${FORKGYM_LLVM_ARCHIVES})
