#include "fnbox.h"

int handler(const fnbox_request *req, fnbox_response *res)
{
        return fnbox_respond(res, req->payload, req->payload_len);
}
