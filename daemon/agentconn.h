/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "registry.h"

/* The daemon end of the agent channel (DESIGN.md decision 4; docs/agent-protocol.md). The
 * protobuf-c types stop here: callers see plain structs. The socket is non-blocking; sends
 * that would block fail with -EAGAIN (messages are small: big payloads travel in a memfd). */

typedef enum AgentMsgType {
        AGENT_MSG_READY,
        AGENT_MSG_INIT_RESULT,
        AGENT_MSG_RESULT,
        _AGENT_MSG_TYPE_MAX,
        _AGENT_MSG_TYPE_INVALID = -EINVAL,
} AgentMsgType;

typedef struct AgentMsg {
        AgentMsgType type;
        int log_fd;          /* READY: the agent's log memfd (owned), else -EBADF */
        bool ok;             /* INIT_RESULT: loaded; RESULT: STATUS_OK */
        char error_type[64]; /* INIT_RESULT/RESULT when !ok */
        char error_message[1024];
        usec_t usec;   /* INIT_RESULT: init_usec; RESULT: run_usec; READY: ready_usec */
        void *payload; /* RESULT: response bytes; INIT_RESULT: a runtime's error body (owned,
                        * malloc'd), may be NULL */
        size_t payload_len;
        char request_id[64]; /* RESULT */
        bool fatal;          /* RESULT: the agent exits after this one (its runtime died) */
} AgentMsg;

void agent_msg_done(AgentMsg *m);

/* Receives one message. -EAGAIN if none is waiting, -ECONNRESET on EOF, -EBADMSG when the agent
 * sent something malformed or unexpected (the caller kills the sandbox). */
int agentconn_recv(int fd, AgentMsg *ret);

/* region: AWS_REGION for Lambda-style runtimes. */
int agentconn_send_init(int fd, const Function *fn, const char *region);
int agentconn_send_invoke(int fd, const char *request_id, const void *payload, size_t len,
                          uint64_t deadline_unix_ms);
int agentconn_send_shutdown(int fd);
