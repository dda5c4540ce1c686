/*
 * test_conn.c - line framing and the per-connection reply machinery of
 * trined: partial lines, many lines per read, CRLF, the size limit, reply
 * order, consent barriers, backpressure, the bound on buffered input and
 * the idle timeout's end of input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/conn.h"

/* Feeds text into f as if read from a socket. */
static void feed(framer *f, const char *text)
{
    size_t n = strlen(text);
    size_t avail;
    char *p = framer_space(f, n, &avail);
    assert_non_null(p);
    assert_true(avail >= n);
    memcpy(p, text, n);
    framer_commit(f, n);
}

/* Expects the next frame to be exactly want. */
static void expect_line(framer *f, const char *want)
{
    const char *line;
    size_t len;
    assert_int_equal(framer_next(f, &line, &len), FRAME_LINE);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(line, want, len);
}

static void test_partial_line_waits(void **state)
{
    (void)state;
    framer f;
    framer_init(&f, 100);
    const char *line;
    size_t len;
    feed(&f, "{\"a\":");
    assert_int_equal(framer_next(&f, &line, &len), FRAME_NONE);
    assert_int_equal(framer_pending(&f), 5);
    feed(&f, "1}");
    assert_int_equal(framer_next(&f, &line, &len), FRAME_NONE);
    feed(&f, "\n{\"b\"");
    expect_line(&f, "{\"a\":1}");
    assert_int_equal(framer_next(&f, &line, &len), FRAME_NONE);
    assert_int_equal(framer_pending(&f), 4);
    framer_free(&f);
}

static void test_many_lines_in_one_read(void **state)
{
    (void)state;
    framer f;
    framer_init(&f, 100);
    feed(&f, "one\ntwo\n\nthree\r\nfour");
    expect_line(&f, "one");
    expect_line(&f, "two");
    expect_line(&f, "");
    /* The '\r' of CRLF stays: it is JSON whitespace. */
    expect_line(&f, "three\r");
    const char *line;
    size_t len;
    assert_int_equal(framer_next(&f, &line, &len), FRAME_NONE);
    feed(&f, "\n");
    expect_line(&f, "four");
    assert_int_equal(framer_pending(&f), 0);
    framer_free(&f);
}

static void test_limit_is_inclusive(void **state)
{
    (void)state;
    framer f;
    framer_init(&f, 8);
    feed(&f, "12345678\n");
    expect_line(&f, "12345678");
    feed(&f, "123456789\n");
    const char *line;
    size_t len;
    assert_int_equal(framer_next(&f, &line, &len), FRAME_OVERSIZE);
    framer_free(&f);
}

static void test_oversize_without_newline(void **state)
{
    (void)state;
    framer f;
    framer_init(&f, 8);
    const char *line;
    size_t len;
    feed(&f, "12345678");
    assert_int_equal(framer_next(&f, &line, &len), FRAME_NONE);
    /* The ninth byte can no longer end a line in time. */
    feed(&f, "9");
    assert_int_equal(framer_next(&f, &line, &len), FRAME_OVERSIZE);
    framer_free(&f);
}

static void test_buffer_moves_and_grows(void **state)
{
    (void)state;
    framer f;
    framer_init(&f, 1 << 20);
    /* Many lines through a buffer that must compact and grow. */
    char big[20000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int round = 0; round < 50; round++) {
        char small[32];
        snprintf(small, sizeof small, "line-%d\n", round);
        feed(&f, small);
        feed(&f, "head-");
        small[strlen(small) - 1] = '\0';
        expect_line(&f, small);
        feed(&f, big);
        feed(&f, "\n");
        const char *line;
        size_t len;
        assert_int_equal(framer_next(&f, &line, &len), FRAME_LINE);
        assert_int_equal(len, 5 + sizeof big - 1);
        assert_memory_equal(line, "head-xxx", 8);
    }
    framer_free(&f);
}

typedef struct fixture {
    int fds[2]; /* [0]: the daemon's end, [1]: the client's */
    conn *c;
    jobpool pool;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, f->fds) != 0)
        return -1;
    f->c = conn_new(f->fds[0], 1, 64);
    f->pool.max = 16;
    *state = f;
    return f->c ? 0 : -1;
}

/* Finishes and collects every job, then frees the connection. */
static int teardown(void **state)
{
    fixture *f = *state;
    jobq sink = {0};
    for (job *j = f->c->fifo_head; j != NULL; j = j->conn_next)
        conn_job_done(f->c, j, &sink);
    conn_collect(f->c, &f->pool);
    assert_null(f->c->fifo_head);
    conn_free(f->c);
    close(f->fds[1]);
    jobpool_free(&f->pool);
    free(f);
    return 0;
}

static void client_send(fixture *f, const char *text)
{
    assert_int_equal(write(f->fds[1], text, strlen(text)),
                     (ssize_t)strlen(text));
}

/* Reads what the daemon wrote to the client. */
static char *client_read(fixture *f)
{
    static char buf[8192];
    ssize_t n = read(f->fds[1], buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static void test_read_makes_jobs_in_order(void **state)
{
    fixture *f = *state;
    jobq batch = {0};
    client_send(f, "{\"id\":1}\n{\"id\":2}\n{\"id\"");
    assert_int_equal(conn_read(f->c, &f->pool, &batch, 1 << 20), CONN_OK);
    assert_int_equal(batch.len, 2);
    assert_string_equal(batch.head->in.data, "{\"id\":1}");
    assert_string_equal(batch.head->next->in.data, "{\"id\":2}");
    assert_ptr_equal(batch.head->conn, f->c);
    assert_int_equal(f->c->njobs, 2);
    assert_int_equal(f->c->queued, 16);

    /* The rest of the partial line arrives. */
    jobq more = {0};
    client_send(f, ":3}\n");
    assert_int_equal(conn_read(f->c, &f->pool, &more, 1 << 20), CONN_OK);
    assert_int_equal(more.len, 1);
    assert_string_equal(more.head->in.data, "{\"id\":3}");
}

static void test_replies_leave_in_request_order(void **state)
{
    fixture *f = *state;
    jobq batch = {0};
    client_send(f, "a\nb\nc\n");
    assert_int_equal(conn_read(f->c, &f->pool, &batch, 1 << 20), CONN_OK);
    job *a = jobq_pop(&batch);
    job *b = jobq_pop(&batch);
    job *c = jobq_pop(&batch);
    sb_puts(&a->out, "A\n");
    sb_puts(&b->out, "B\n");
    sb_puts(&c->out, "C\n");
    jobq sink = {0};
    /* c and b finish first: nothing may leave before a. */
    conn_job_done(f->c, c, &sink);
    conn_job_done(f->c, b, &sink);
    conn_collect(f->c, &f->pool);
    assert_int_equal(conn_out_pending(f->c), 0);
    assert_int_equal(f->c->njobs, 3);
    conn_job_done(f->c, a, &sink);
    conn_collect(f->c, &f->pool);
    assert_int_equal(f->c->njobs, 0);
    assert_int_equal(f->c->queued, 0);
    assert_int_equal(conn_flush(f->c), CONN_OK);
    assert_string_equal(client_read(f), "A\nB\nC\n");
    assert_int_equal(conn_out_pending(f->c), 0);
}

static void test_oversize_line_answers_then_stops(void **state)
{
    fixture *f = *state;
    jobq batch = {0};
    char line[200];
    memset(line, 'x', sizeof line);
    client_send(f, "ok\n");
    assert_int_equal(write(f->fds[1], line, sizeof line), (ssize_t)sizeof line);
    client_send(f, "\nnever\n");
    assert_int_equal(conn_read(f->c, &f->pool, &batch, 1 << 20), CONN_OK);
    /* One job for "ok"; the error reply is queued after it, finished. */
    assert_int_equal(batch.len, 1);
    assert_true(f->c->eof);
    assert_int_equal(f->c->njobs, 2);
    job *err = f->c->fifo_tail;
    assert_true(err->done);
    assert_string_equal(err->out.data,
                        "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":"
                        "-32700,\"message\":\"line exceeds 64 bytes\"}}\n");
    job *ok = jobq_pop(&batch);
    sb_puts(&ok->out, "OK\n");
    jobq sink = {0};
    conn_job_done(f->c, ok, &sink);
    conn_collect(f->c, &f->pool);
    assert_int_equal(conn_flush(f->c), CONN_OK);
    assert_string_equal(client_read(f),
                        "OK\n{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{"
                        "\"code\":-32700,\"message\":\"line exceeds 64 "
                        "bytes\"}}\n");
    assert_true(conn_finished(f->c));
    /* Nothing more is read. */
    jobq none = {0};
    assert_int_equal(conn_read(f->c, &f->pool, &none, 1 << 20), CONN_OK);
    assert_int_equal(none.len, 0);
}

static void test_eof_answers_unterminated_last_line(void **state)
{
    fixture *f = *state;
    jobq batch = {0};
    client_send(f, "whole\npart");
    shutdown(f->fds[1], SHUT_WR);
    /* A short read ends the first call (the socket looked drained); the
     * next wake-up reads the end of the stream. */
    assert_int_equal(conn_read(f->c, &f->pool, &batch, 1 << 20), CONN_OK);
    assert_int_equal(batch.len, 1);
    assert_false(f->c->eof);
    assert_int_equal(framer_pending(&f->c->in), 4);
    /* The bytes after the last newline are a line of their own. */
    assert_int_equal(conn_read(f->c, &f->pool, &batch, 1 << 20), CONN_EOF);
    assert_int_equal(batch.len, 2);
    assert_string_equal(batch.head->in.data, "whole");
    assert_string_equal(batch.head->next->in.data, "part");
    assert_true(f->c->eof);
    assert_true(f->c->peer_eof);
    assert_int_equal(framer_pending(&f->c->in), 0);
    assert_false(conn_finished(f->c));
}

static void test_eof_ignores_blank_leftover(void **state)
{
    fixture *f = *state;
    jobq batch = {0};
    client_send(f, "whole\n \r\t");
    shutdown(f->fds[1], SHUT_WR);
    conn_read(f->c, &f->pool, &batch, 1 << 20);
    assert_int_equal(conn_read(f->c, &f->pool, &batch, 1 << 20), CONN_EOF);
    assert_int_equal(batch.len, 1);
    assert_string_equal(batch.head->in.data, "whole");
}

static void test_consent_requests_are_barriers(void **state)
{
    fixture *f = *state;
    jobq batch = {0};
    client_send(f, "check1\n{\"method\":\"consent.grant\"}\ncheck2\n"
                   "{\"method\":\"consent.list\"}\ncheck3\n");
    assert_int_equal(conn_read(f->c, &f->pool, &batch, 1 << 20), CONN_OK);
    /* Lines after the grant wait for it. */
    assert_int_equal(batch.len, 2);
    assert_int_equal(f->c->njobs, 5);
    assert_int_equal(f->c->held.len, 3);
    job *check1 = jobq_pop(&batch);
    job *grant = jobq_pop(&batch);
    jobq next = {0};
    conn_job_done(f->c, check1, &next);
    assert_int_equal(next.len, 0);
    conn_job_done(f->c, grant, &next);
    /* check2 and the list go; check3 waits for the list. */
    assert_int_equal(next.len, 2);
    assert_string_equal(next.head->in.data, "check2");
    assert_int_equal(f->c->held.len, 1);
    job *check2 = jobq_pop(&next);
    job *list = jobq_pop(&next);
    jobq last = {0};
    conn_job_done(f->c, check2, &last);
    conn_job_done(f->c, list, &last);
    assert_int_equal(last.len, 1);
    assert_string_equal(last.head->in.data, "check3");
    assert_null(f->c->barrier);
    assert_true(conn_is_barrier("x consent.revoke", 16));
    assert_false(conn_is_barrier("consent", 7));
}

static void test_backpressure_pauses_reading(void **state)
{
    fixture *f = *state;
    jobq batch = {0};
    char *lines = malloc(CONN_MAX_JOBS * 2 + 100);
    assert_non_null(lines);
    size_t n = 0;
    for (unsigned i = 0; i < CONN_MAX_JOBS + 10; i++) {
        lines[n++] = 'x';
        lines[n++] = '\n';
    }
    assert_int_equal(write(f->fds[1], lines, n), (ssize_t)n);
    free(lines);
    assert_int_equal(conn_read(f->c, &f->pool, &batch, 1 << 20), CONN_OK);
    /* Framing stops at the cap; the rest waits in the buffer. */
    assert_int_equal(batch.len, CONN_MAX_JOBS);
    assert_true(f->c->paused);
    assert_int_equal(framer_pending(&f->c->in), 20);

    /* Finishing half of the jobs is not enough to resume... */
    jobq sink = {0};
    job *j = batch.head;
    for (unsigned i = 0; i < CONN_MAX_JOBS / 2 - 1; i++, j = j->next) {
        sb_puts(&j->out, "r\n");
        conn_job_done(f->c, j, &sink);
    }
    conn_collect(f->c, &f->pool);
    assert_false(conn_update_pause(f->c));
    assert_true(f->c->paused);
    /* ...one more is. */
    sb_puts(&j->out, "r\n");
    conn_job_done(f->c, j, &sink);
    conn_collect(f->c, &f->pool);
    assert_true(conn_update_pause(f->c));
    assert_false(f->c->paused);
    jobq rest = {0};
    assert_int_equal(conn_read(f->c, &f->pool, &rest, 0), CONN_OK);
    assert_int_equal(rest.len, 10);
}

/* Bytes the client sent that the daemon's end has not read yet. */
static int unread(fixture *f)
{
    int n = -1;
    assert_int_equal(ioctl(f->fds[0], FIONREAD, &n), 0);
    return n;
}

static void test_default_limits(void **state)
{
    fixture *f = *state;
    assert_int_equal(f->c->max_out, CONN_OUT_CAP);
    assert_int_equal(f->c->max_jobs, CONN_MAX_JOBS);
    conn_set_limits(f->c, 0, 0);
    assert_int_equal(f->c->max_out, 1);
    assert_int_equal(f->c->max_jobs, 1);
}

static void test_buffered_input_is_bounded(void **state)
{
    fixture *f = *state;
    conn *c = conn_new(f->fds[0], 2, 1 << 20);
    assert_non_null(c);
    conn_set_limits(c, CONN_OUT_CAP, 1);
    /* A long line arrives in pieces: the buffer grows to hold it, and has
     * far more room than one read should take. */
    char *chunk = malloc(150 * 1024 + 1);
    assert_non_null(chunk);
    memset(chunk, 'y', 100 * 1024);
    jobq batch = {0};
    for (int i = 0; i < 6; i++) {
        assert_int_equal(write(f->fds[1], chunk, 100 * 1024), 100 * 1024);
        assert_int_equal(conn_read(c, &f->pool, &batch, 1 << 20), CONN_OK);
    }
    assert_int_equal(batch.len, 0);
    assert_int_equal(framer_pending(&c->in), 600 * 1024);
    assert_true(c->in.cap - c->in.len > 2 * CONN_READ_MAX);
    /* The line ends, and many short ones follow at once. */
    size_t total = 150 * 1024;
    chunk[0] = '\n';
    for (size_t i = 1; i < total; i += 2) {
        chunk[i] = 'x';
        chunk[i + 1] = '\n';
    }
    assert_int_equal(write(f->fds[1], chunk, total), (ssize_t)total);
    free(chunk);
    assert_int_equal(conn_read(c, &f->pool, &batch, 1 << 20), CONN_OK);
    /* One request in progress is the limit: reading stops after the read
     * that completed the long line, and that read's other lines wait in
     * the buffer, at most CONN_READ_MAX bytes. */
    assert_true(c->paused);
    assert_int_equal(batch.len, 1);
    assert_int_equal(batch.head->in.len, 600 * 1024);
    assert_int_equal(framer_pending(&c->in), CONN_READ_MAX - 1);
    assert_int_equal(unread(f), (int)(total - CONN_READ_MAX));
    /* Paused, nothing more is read or framed. */
    jobq more = {0};
    assert_int_equal(conn_read(c, &f->pool, &more, 1 << 20), CONN_OK);
    assert_int_equal(more.len, 0);
    assert_int_equal(unread(f), (int)(total - CONN_READ_MAX));

    jobq sink = {0};
    job *j = jobq_pop(&batch);
    sb_puts(&j->out, "r\n");
    conn_job_done(c, j, &sink);
    conn_collect(c, &f->pool);
    c->fd = -1; /* the fixture's connection owns the socket */
    conn_free(c);
}

static void test_unsent_replies_pause_reading(void **state)
{
    fixture *f = *state;
    conn_set_limits(f->c, 1000, CONN_MAX_JOBS);
    jobq batch = {0};
    client_send(f, "a\nb\nc\n");
    assert_int_equal(conn_read(f->c, &f->pool, &batch, 1 << 20), CONN_OK);
    assert_int_equal(batch.len, 3);
    char reply[601];
    memset(reply, 'r', 599);
    reply[599] = '\n';
    reply[600] = '\0';
    jobq sink = {0};
    for (job *j = jobq_pop(&batch); j != NULL; j = jobq_pop(&batch)) {
        sb_puts(&j->out, reply);
        conn_job_done(f->c, j, &sink);
    }
    conn_collect(f->c, &f->pool);
    assert_int_equal(conn_out_pending(f->c), 1800);
    assert_true(conn_update_pause(f->c));
    assert_true(f->c->paused);

    /* A client that does not read is not read from. */
    client_send(f, "d\n");
    jobq more = {0};
    assert_int_equal(conn_read(f->c, &f->pool, &more, 1 << 20), CONN_OK);
    assert_int_equal(more.len, 0);
    assert_int_equal(unread(f), 2);

    /* Written down to 600 bytes, more than half the limit: still paused. */
    f->c->out_off = 1200;
    assert_false(conn_update_pause(f->c));
    assert_true(f->c->paused);
    /* At half of it, reading resumes. */
    f->c->out_off = 1300;
    assert_true(conn_update_pause(f->c));
    assert_false(f->c->paused);
    assert_int_equal(conn_read(f->c, &f->pool, &more, 1 << 20), CONN_OK);
    assert_int_equal(more.len, 1);
    assert_string_equal(more.head->in.data, "d");
    f->c->out_off = 0;
}

static void test_idle_state(void **state)
{
    fixture *f = *state;
    assert_true(conn_is_idle(f->c));
    jobq batch = {0};
    client_send(f, "a\n");
    conn_read(f->c, &f->pool, &batch, 1 << 20);
    assert_false(conn_is_idle(f->c));
    job *j = jobq_pop(&batch);
    sb_puts(&j->out, "A\n");
    jobq sink = {0};
    conn_job_done(f->c, j, &sink);
    conn_collect(f->c, &f->pool);
    /* Answered but not yet written. */
    assert_false(conn_is_idle(f->c));
    assert_int_equal(conn_flush(f->c), CONN_OK);
    assert_true(conn_is_idle(f->c));
    assert_string_equal(client_read(f), "A\n");
}

static void test_end_idle_answers_partial_line(void **state)
{
    fixture *f = *state;
    jobq batch = {0};
    client_send(f, "{\"jsonrpc\":\"2.0\",\"id\":1,");
    assert_int_equal(conn_read(f->c, &f->pool, &batch, 1 << 20), CONN_OK);
    assert_int_equal(batch.len, 0);
    assert_true(conn_is_idle(f->c));
    assert_int_equal(conn_end_idle(f->c, &f->pool, 300), 0);
    assert_true(f->c->eof);
    assert_false(f->c->peer_eof);
    assert_false(conn_is_idle(f->c));
    assert_int_equal(framer_pending(&f->c->in), 0);
    conn_collect(f->c, &f->pool);
    assert_int_equal(conn_flush(f->c), CONN_OK);
    assert_string_equal(client_read(f),
                        "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{"
                        "\"code\":-32700,\"message\":\"line not completed "
                        "within 300 s\"}}\n");
    assert_true(conn_finished(f->c));
}

static void test_end_idle_without_partial_line(void **state)
{
    fixture *f = *state;
    jobq batch = {0};
    client_send(f, " \r\t");
    conn_read(f->c, &f->pool, &batch, 1 << 20);
    assert_int_equal(conn_end_idle(f->c, &f->pool, 1), 0);
    /* Blank leftovers are not a request: nothing to answer. */
    assert_null(f->c->fifo_head);
    assert_true(conn_finished(f->c));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partial_line_waits),
        cmocka_unit_test(test_many_lines_in_one_read),
        cmocka_unit_test(test_limit_is_inclusive),
        cmocka_unit_test(test_oversize_without_newline),
        cmocka_unit_test(test_buffer_moves_and_grows),
        cmocka_unit_test_setup_teardown(test_read_makes_jobs_in_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_replies_leave_in_request_order,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversize_line_answers_then_stops,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_eof_answers_unterminated_last_line,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_eof_ignores_blank_leftover, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_consent_requests_are_barriers,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_backpressure_pauses_reading, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_default_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_buffered_input_is_bounded, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unsent_replies_pause_reading,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_end_idle_answers_partial_line,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_end_idle_without_partial_line,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
