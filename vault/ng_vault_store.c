#include "ng_vault_store.h"

const char *
ng_vault_store_where(const ng_vault_store *s)
{
    return s->where;
}

void
ng_vault_store_free(ng_vault_store *s)
{
    if (s != NULL)
        s->ops->destroy(s);
}

ng_err
ng_vault_store_stamp(ng_vault_store *s, uint8_t out[NG_VAULT_STORE_STAMP_BYTES])
{
    return s->ops->stamp(s, out);
}
