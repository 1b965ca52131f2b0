/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A camera for the tests: an RTSP server on 127.0.0.1 serving a live
 * videotestsrc as Motion JPEG at rtsp://127.0.0.1:PORT/camera, until it is
 * killed.
 *
 *   rtsp-test-server PORT [PATTERN]
 *
 * PORT 0 takes a free one. Once it listens, the server prints the port on
 * its own line of stdout, so that a test can start it again on the same
 * port after stopping it. */
#include <gst/rtsp-server/rtsp-server.h>
#include <stdio.h>
#include <stdlib.h>

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  if (argc < 2 || argc > 3) {
    fprintf (stderr, "usage: %s PORT [PATTERN]\n", argv[0]);
    return 2;
  }
  const char *pattern = argc == 3 ? argv[2] : "red";
  GstRTSPServer *server = gst_rtsp_server_new ();
  gst_rtsp_server_set_address (server, "127.0.0.1");
  gst_rtsp_server_set_service (server, argv[1]);

  GstRTSPMediaFactory *factory = gst_rtsp_media_factory_new ();
  /* rtpjpegpay takes 4:2:0 JPEG only. */
  g_autofree char *launch = g_strdup_printf (
      "( videotestsrc is-live=true "
      "pattern=%s ! video/x-raw,format=I420,width=160,height=120,"
      "framerate=10/1 ! jpegenc ! rtpjpegpay name=pay0 pt=96 )",
      pattern);
  gst_rtsp_media_factory_set_launch (factory, launch);
  /* One pipeline for every client, as a camera has. */
  gst_rtsp_media_factory_set_shared (factory, TRUE);
  GstRTSPMountPoints *mounts = gst_rtsp_server_get_mount_points (server);
  gst_rtsp_mount_points_add_factory (mounts, "/camera", factory);
  g_object_unref (mounts);

  if (gst_rtsp_server_attach (server, NULL) == 0) {
    fprintf (stderr, "rtsp-test-server: cannot listen on 127.0.0.1:%s\n",
        argv[1]);
    return 1;
  }
  printf ("%d\n", gst_rtsp_server_get_bound_port (server));
  fflush (stdout);
  g_main_loop_run (g_main_loop_new (NULL, FALSE));
  return 0;
}
