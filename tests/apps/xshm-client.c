/*
 * An X client using MIT-SHM the way image viewers and toolkits do, for tests/apps/run-apps.sh's
 * xvfb case. Two 64x64 images in SysV segments, each attached by the server (XShmAttach) and
 * then removed (IPC_RMID: they live while the client and the server keep them attached). Every
 * 20 ms a round: a pattern of the round's number written into the first segment, put into a
 * pixmap (XShmPutImage), read back into the second (XShmGetImage), compared. Prints
 * "READY SHMID SHMID", then "round N bad B" every 10 rounds; on SIGTERM "PASS rounds N" or
 * "FAIL rounds N bad B" (a round whose image came back different: the server and the client
 * no longer share the segments).
 */
#include <X11/Xlib.h>
#include <X11/Xutil.h>
#include <X11/extensions/XShm.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

#define SIDE 64

static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }

/* an image in a SysV segment the server has attached, the segment already removed */
static XImage *shared_image(Display *dpy, XShmSegmentInfo *seg)
{
	int scr = DefaultScreen(dpy);
	XImage *im = XShmCreateImage(dpy, DefaultVisual(dpy, scr), DefaultDepth(dpy, scr), ZPixmap, NULL, seg,
				     SIDE, SIDE);
	if (!im)
		return NULL;
	seg->shmid = shmget(IPC_PRIVATE, (size_t)im->bytes_per_line * im->height, IPC_CREAT | 0600);
	if (seg->shmid < 0)
		return NULL;
	seg->shmaddr = im->data = shmat(seg->shmid, NULL, 0);
	seg->readOnly = False;
	if (seg->shmaddr == (char *)-1 || !XShmAttach(dpy, seg))
		return NULL;
	XSync(dpy, False);
	shmctl(seg->shmid, IPC_RMID, NULL);
	return im;
}

int main(void)
{
	/* (started with xeyes and xclock as the server comes up: asked again for up to 5 s) */
	Display *dpy = NULL;
	for (int tries = 0; tries < 50 && !(dpy && XShmQueryExtension(dpy)); tries++) {
		if (dpy)
			XCloseDisplay(dpy);
		if (tries)
			usleep(100000);
		dpy = XOpenDisplay(NULL);
	}
	if (!dpy || !XShmQueryExtension(dpy)) {
		printf("FAIL no display or no MIT-SHM (5 s)\n");
		return 1;
	}
	signal(SIGTERM, on_term);
	XShmSegmentInfo put_seg, get_seg;
	XImage *put = shared_image(dpy, &put_seg), *get = shared_image(dpy, &get_seg);
	if (!put || !get) {
		printf("FAIL no shared image\n");
		return 1;
	}
	int scr = DefaultScreen(dpy);
	Pixmap pixmap = XCreatePixmap(dpy, RootWindow(dpy, scr), SIDE, SIDE, DefaultDepth(dpy, scr));
	GC gc = XCreateGC(dpy, pixmap, 0, NULL);
	size_t len = (size_t)put->bytes_per_line * put->height;
	unsigned long rounds = 0, bad = 0;
	printf("READY %d %d\n", put_seg.shmid, get_seg.shmid);
	fflush(stdout);
	while (!stop) {
		rounds++;
		for (size_t i = 0; i < len; i++)
			put->data[i] = (char)((i * 7 + rounds) & 0xff);
		if (put->bits_per_pixel == 32) /* the unused byte of each pixel */
			for (size_t i = 3; i < len; i += 4)
				put->data[i] = 0;
		XShmPutImage(dpy, pixmap, gc, put, 0, 0, 0, 0, SIDE, SIDE, False);
		memset(get->data, 0, len);
		XShmGetImage(dpy, pixmap, get, 0, 0, AllPlanes);
		if (memcmp(put->data, get->data, len) != 0)
			bad++;
		if (rounds % 10 == 0) {
			printf("round %lu bad %lu\n", rounds, bad);
			fflush(stdout);
		}
		usleep(20000);
	}
	if (bad)
		printf("FAIL rounds %lu bad %lu\n", rounds, bad);
	else
		printf("PASS rounds %lu\n", rounds);
	return bad != 0;
}
