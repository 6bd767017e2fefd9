/* SPDX-License-Identifier: Apache-2.0 */
#include "agentconn.h"

#include <inttypes.h>
#include <string.h>

#include "wire.h"

void agent_msg_done(AgentMsg *m)
{
        if (!m)
                return;
        m->log_fd = safe_close(m->log_fd);
        free(m->payload);
        m->payload = NULL;
        m->payload_len = 0;
}

static void copy_str(char *dst, size_t size, const char *src)
{
        (void)snprintf(dst, size, "%s", src ? src : "");
}

static int copy_bytes(AgentMsg *m, const uint8_t *data, size_t len)
{
        if (len == 0)
                return 0;
        m->payload = malloc(len);
        if (!m->payload)
                return -ENOMEM;
        memcpy(m->payload, data, len);
        m->payload_len = len;
        return 0;
}

int agentconn_recv(int fd, AgentMsg *ret)
{
        Fnbox__Envelope *env = NULL;
        _cleanup_close_ int extra_fd = -EBADF;
        AgentMsg m = {.log_fd = -EBADF};
        int r;

        r = wire_recv(fd, &env, &extra_fd);
        if (r < 0)
                return r;

        switch (env->msg_case) {
        case FNBOX__ENVELOPE__MSG_READY:
                if (extra_fd < 0) {
                        r = -EBADMSG; /* Ready must carry the log memfd */
                        break;
                }
                m.type = AGENT_MSG_READY;
                m.usec = env->ready->ready_usec;
                m.log_fd = TAKE_FD(extra_fd);
                break;
        case FNBOX__ENVELOPE__MSG_INIT_RESULT:
                m.type = AGENT_MSG_INIT_RESULT;
                m.ok = env->init_result->ok;
                m.usec = env->init_result->init_usec;
                copy_str(m.error_type, sizeof(m.error_type), env->init_result->error_type);
                copy_str(m.error_message, sizeof(m.error_message), env->init_result->error_message);
                r = copy_bytes(&m, env->init_result->error_body.data,
                               env->init_result->error_body.len);
                break;
        case FNBOX__ENVELOPE__MSG_RESULT: {
                Fnbox__Result *res = env->result;
                m.type = AGENT_MSG_RESULT;
                m.ok = res->status == FNBOX__STATUS__STATUS_OK;
                m.usec = res->run_usec;
                copy_str(m.request_id, sizeof(m.request_id), res->request_id);
                copy_str(m.error_type, sizeof(m.error_type), res->error_type);
                copy_str(m.error_message, sizeof(m.error_message), res->error_message);
                m.fatal = res->fatal;
                r = copy_bytes(&m, res->payload.data, res->payload.len);
                break;
        }
        default:
                r = -EBADMSG; /* the agent may not send anything else */
                break;
        }
        wire_envelope_free(env);
        if (r < 0) {
                agent_msg_done(&m);
                return r;
        }
        *ret = m;
        return 0;
}

int agentconn_send_init(int fd, const Function *fn, const char *region)
{
        Fnbox__Envelope env = FNBOX__ENVELOPE__INIT;
        Fnbox__Init init = FNBOX__INIT__INIT;
        _cleanup_free_ Fnbox__EnvVar *vars = NULL;
        _cleanup_free_ Fnbox__EnvVar **ptrs = NULL;
        char version[32];

        if (fn->spec.n_env > 0) {
                vars = calloc(fn->spec.n_env, sizeof(*vars));
                ptrs = calloc(fn->spec.n_env, sizeof(*ptrs));
                if (!vars || !ptrs)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < fn->spec.n_env; i++) {
                fnbox__env_var__init(&vars[i]);
                vars[i].key = fn->spec.env[i].key;
                vars[i].value = fn->spec.env[i].value;
                ptrs[i] = &vars[i];
        }
        (void)snprintf(version, sizeof(version), "%" PRIu64, fn->version);
        init.runtime = (char *)fn->spec.runtime;
        init.handler = (char *)fn->spec.handler;
        init.function_name = (char *)fn->spec.name;
        init.function_version = version;
        init.memory_mb = fn->spec.memory_mb;
        init.timeout_ms = fn->spec.timeout_ms;
        init.n_env = fn->spec.n_env;
        /* The agent makes the ARN from the region and the name. */
        init.region = (char *)(region ? region : "");
        init.env = ptrs;
        env.msg_case = FNBOX__ENVELOPE__MSG_INIT;
        env.init = &init;
        return wire_send(fd, &env, -EBADF);
}

int agentconn_send_invoke(int fd, const char *request_id, const void *payload, size_t len,
                          uint64_t deadline_unix_ms)
{
        Fnbox__Envelope env = FNBOX__ENVELOPE__INIT;
        Fnbox__Invoke inv = FNBOX__INVOKE__INIT;

        inv.request_id = (char *)request_id;
        inv.payload.data = (uint8_t *)payload;
        inv.payload.len = len;
        inv.deadline_unix_ms = deadline_unix_ms;
        env.msg_case = FNBOX__ENVELOPE__MSG_INVOKE;
        env.invoke = &inv;
        return wire_send(fd, &env, -EBADF);
}

int agentconn_send_shutdown(int fd)
{
        Fnbox__Envelope env = FNBOX__ENVELOPE__INIT;
        Fnbox__Shutdown sd = FNBOX__SHUTDOWN__INIT;

        env.msg_case = FNBOX__ENVELOPE__MSG_SHUTDOWN;
        env.shutdown = &sd;
        return wire_send(fd, &env, -EBADF);
}
