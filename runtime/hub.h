/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The HuggingFace hub cache as huggingface_hub lays it out, for the loader
 * (hub names) and the tool (pull, models):
 *
 *   CACHE/models--ORG--NAME/refs/BRANCH          the commit hash, as text
 *   CACHE/models--ORG--NAME/snapshots/COMMIT/F   -> ../../blobs/ETAG
 *   CACHE/models--ORG--NAME/blobs/ETAG           the file's bytes
 *
 * ETAG is the sha256 of an LFS file, the git blob id of any other. */
#pragma once

#include <glib.h>

/* The revision used when a name gives none. */
#define CLIP_HUB_DEFAULT_REVISION "main"

/* "org/name", "org/name@rev" or OpenCLIP's "hf-hub:org/name[@rev]" into
 * the repository id and the revision (CLIP_HUB_DEFAULT_REVISION when none).
 * FALSE for anything else, such as a path of more than two parts. */
gboolean clip_hub_parse_name (const char *name, char **repo_id,
    char **revision);

/* CACHE/models--ORG--NAME for a repository id. */
char *clip_hub_repo_dir (const char *cache, const char *repo_id);

/* TRUE for a full commit hash: 40 lowercase hex digits. */
gboolean clip_hub_is_commit (const char *revision);

/* huggingface_hub's home: $HF_HOME, else $XDG_CACHE_HOME/huggingface, else
 * ~/.cache/huggingface (the token file of a login is kept there). */
char *clip_hub_home_dir (void);

/* HF_HUB_OFFLINE set to 1, ON, YES or TRUE (any case). */
gboolean clip_hub_offline (void);

/* The snapshot folder of repo_id at revision in cache: a commit directly,
 * any other revision through refs/REVISION. NULL with a CLIP_ERROR_IO
 * error saying what is missing (and to pull it) otherwise. */
char *clip_hub_snapshot_dir (const char *cache, const char *repo_id,
    const char *revision, GError **error);

/* clip_model_resolve, and the model's display name in *name (the
 * repository's name part for a hub model, the folder's base name else). */
char *clip_hub_resolve (const char *model, char **name, GError **error);
