// Everything of coppice in one include.
#pragma once

#include "coppice/async.hpp"
#include "coppice/exit_reason.hpp"
#include "coppice/inbox.hpp"
#include "coppice/message.hpp"
#include "coppice/options.hpp"
#include "coppice/pid.hpp"
#include "coppice/process.hpp"
#include "coppice/result.hpp"
#include "coppice/runtime.hpp"
#include "coppice/signals.hpp"
#include "coppice/timer.hpp"
#include "coppice/server_ref.hpp"
#include "coppice/registry.hpp"
#include "coppice/gen_server.hpp"
#include "coppice/child_spec.hpp"
#include "coppice/task.hpp"
