/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* What main.c (the channel, native functions) and runtime-api.c (process runtimes) share. */

#include <stdbool.h>

#include "fnbox.pb-c.h"

#define CHANNEL_FD 3
#define TASK_ROOT "/var/task"

/* Exit statuses, for the daemon's logs. 0 is a requested end (Shutdown or EOF). */
typedef enum AgentExit {
        AGENT_EXIT_OK = 0,
        AGENT_EXIT_SETUP = 2,    /* no channel on fd 3, or memfd/signalfd/Ready failed */
        AGENT_EXIT_RECV = 3,     /* the channel failed or carried a malformed packet */
        AGENT_EXIT_SEND = 4,     /* a reply could not be sent */
        AGENT_EXIT_PROTOCOL = 5, /* a message out of order: Invoke before Init succeeded, ... */
        AGENT_EXIT_RUNTIME = 6,  /* a process runtime failed to start or exited */
} AgentExit;

/* True for the runtimes whose functions run as a child process speaking the Lambda Runtime API:
 * "provided" (and its aliases "provided.al2", "provided.al2023"), "python3", "nodejs". */
bool runtime_is_process(const char *runtime);

/* Runs a process runtime for the rest of the agent's life: serves the Runtime API on
 * 127.0.0.1:9001, starts the bootstrap, answers init (sends InitResult itself) and then every
 * Invoke until Shutdown or EOF. signal_fd is the agent's SIGCHLD signalfd (SIGCHLD blocked),
 * log_fd the log memfd (already on fds 1 and 2). Returns the agent's exit status. */
int runtime_run(const Fnbox__Init *init, int signal_fd, int log_fd);
