# chronos_check_layering(): the dependency direction of the tree, checked at
# configure time so a change that breaks it fails the build:
#  - core/ includes nothing from coordinator/, worker/, client/, rpc/ or
#    bench/, no gRPC and no Torch header, and chronos_core links neither
#    gRPC nor Torch (transitively);
#  - the worker engine (chronos_worker_lib) links no gRPC: it reaches the
#    coordinator only through the daemon.

# Every library `target` links, transitively (targets and plain names).
function(_chronos_link_closure target out)
  set(seen "")
  set(todo ${target})
  while(todo)
    list(POP_FRONT todo t)
    if(t IN_LIST seen)
      continue()
    endif()
    list(APPEND seen ${t})
    if(TARGET ${t})
      get_target_property(type ${t} TYPE)
      set(libs "")
      if(NOT type STREQUAL "INTERFACE_LIBRARY")
        get_target_property(direct ${t} LINK_LIBRARIES)
        if(direct)
          list(APPEND libs ${direct})
        endif()
      endif()
      get_target_property(iface ${t} INTERFACE_LINK_LIBRARIES)
      if(iface)
        list(APPEND libs ${iface})
      endif()
      foreach(l ${libs})
        # Generator expressions such as $<LINK_ONLY:x> name x.
        string(REGEX REPLACE "^\\$<LINK_ONLY:(.*)>$" "\\1" l "${l}")
        if(NOT l MATCHES "^\\$<")
          list(APPEND todo ${l})
        endif()
      endforeach()
    endif()
  endwhile()
  set(${out} ${seen} PARENT_SCOPE)
endfunction()

function(_chronos_forbid_links target pattern why)
  _chronos_link_closure(${target} closure)
  foreach(l ${closure})
    if(l MATCHES "${pattern}")
      message(FATAL_ERROR "layering: ${target} links ${l} (${why})")
    endif()
  endforeach()
endfunction()

function(chronos_check_layering)
  file(GLOB_RECURSE core_files "${PROJECT_SOURCE_DIR}/core/*.h" "${PROJECT_SOURCE_DIR}/core/*.cc")
  foreach(f ${core_files})
    file(STRINGS "${f}" includes REGEX "^[ \t]*#[ \t]*include")
    foreach(line ${includes})
      if(line MATCHES "[\"<](coordinator|worker|client|rpc|bench)/" OR
         line MATCHES "[\"<](grpc|grpcpp|torch|ATen|c10)/" OR
         line MATCHES "grpc\\.pb\\.h")
        file(RELATIVE_PATH rel "${PROJECT_SOURCE_DIR}" "${f}")
        message(FATAL_ERROR "layering: ${rel} has '${line}': core/ is the pure "
          "bottom layer (no coordinator, worker, client, rpc, gRPC or Torch)")
      endif()
    endforeach()
  endforeach()
  _chronos_forbid_links(chronos_core "([Gg][Rr][Pp][Cc]|[Tt]orch|c10)"
    "core links neither gRPC nor Torch")
  if(TARGET chronos_worker_lib)
    _chronos_forbid_links(chronos_worker_lib "(grpc|chronos_rpc)"
      "the engine reaches the coordinator only through the daemon")
  endif()
endfunction()
