;;; The sbcl case of tests/apps/run-apps.sh: SBCL (its generational collector with card
;;; marking and a SIGSEGV/mprotect-based write barrier on the older generations, its
;;; stop-the-world signals between threads, its own signal handling) with threads, a child and
;;; a socket server.
;;;
;;;   sbcl --dynamic-space-size 2048 --script sbcl-app.lisp DIR
;;;
;;; A hash table of 1,000,000 entries (i -> f(i)), promoted to an old generation by a full
;;; collection, then written to by a thread (a vector of 100,000 old conses re-pointed at fresh
;;; objects every round: the write barrier of old pages); a ticker thread counting every 5 ms;
;;; 2 worker threads chaining a checksum (every round computed twice: the two must agree) and
;;; consing; a child (cat, through run-program streams) that a thread sends a numbered line
;;; to every 20 ms, checking each comes back; an HTTP server (sb-bsd-sockets on 127.0.0.1, a
;;; free port written to DIR/port), keep-alive with no timeouts, a thread per connection:
;;; "GET /mark" checks the table and the old vector, records every counter and answers
;;; "request N on connection C" (200), or 500 and the reasons; "GET /ping" answers "pong".
;;;
;;; Prints "READY <pid of cat>" once all runs.
;;; SIGTERM: checks two marks were taken, that the ticker, the workers, the writer and the
;;; round trips with cat went on after the second with no wrong result, the table and the
;;; vector are intact, then runs (sb-ext:gc :full t) with 256 MiB more kept and 1 GiB churned,
;;; and checks both again; prints PASS or "FAIL: " and the reasons.
;;; APPS_CORRUPT=table|ticks|child breaks that state when the second mark is taken (the test's
;;; check that each check can fail).
(require :sb-bsd-sockets)

(defpackage :sbcl-app (:use :cl))
(in-package :sbcl-app)

(defconstant +entries+ 1000000)
(defconstant +cells+ 100000)
(defvar *dir* (second sb-ext:*posix-argv*))
(defvar *corrupt* (or (sb-ext:posix-getenv "APPS_CORRUPT") ""))
(defvar *lock* (sb-thread:make-mutex :name "counters"))
(defvar *counters* (make-hash-table :test 'eq))
(defvar *marks* '())
(defvar *stop* nil)
(defvar *term* nil)

(defun value (i) (logand (logxor (* i 2654435761) #x5a17) #xffffffff))

(defun bump (name &optional (by 1))
  (sb-thread:with-mutex (*lock*) (incf (gethash name *counters* 0) by)))
(defun counters ()
  (sb-thread:with-mutex (*lock*)
    (let ((copy (make-hash-table :test 'eq)))
      (maphash (lambda (k v) (setf (gethash k copy) v)) *counters*)
      copy)))
(defun counter (table name) (gethash name table 0))

(defvar *table* (make-hash-table :size +entries+))
(dotimes (i +entries+) (setf (gethash i *table*) (value i)))
;; old conses, each re-pointed at a fresh (round . index) list by the writer thread
(defvar *cells* (let ((v (make-array +cells+)))
                  (dotimes (i +cells+ v) (setf (aref v i) (cons i (list 0 i))))))
(sb-ext:gc :full t)

(defun table-problem ()
  (let ((bad 0))
    (dotimes (i +entries+) (unless (eql (gethash i *table*) (value i)) (incf bad)))
    (let ((bad-cells 0))
      (dotimes (i +cells+)
        (let ((c (aref *cells* i)))
          (unless (and (consp c) (eql (car c) i) (consp (cdr c)) (eql (second (cdr c)) i))
            (incf bad-cells))))
      (unless (and (= (hash-table-count *table*) +entries+) (zerop bad) (zerop bad-cells))
        (format nil "table: ~d entries, ~d wrong; ~d old cells wrong"
                (hash-table-count *table*) bad bad-cells)))))

(defmacro spawn (name &body body)
  `(sb-thread:make-thread (lambda () ,@body) :name ,name))

(defvar *ticks-stop* nil)
(spawn "ticker" (loop until (or *stop* *ticks-stop*) do (bump :ticks) (sleep 0.005)))

(spawn "writer"
  (loop for round from 1 until *stop*
        do (dotimes (i +cells+)
             (setf (cdr (aref *cells* i)) (list round i)))
           (bump :writes)
           (sleep 0.01)))

(dotimes (w 2)
  (let ((w w))
    (spawn (format nil "worker ~d" w)
      (let ((x (+ 17 w)))
        (loop until *stop*
              do (flet ((step1 (x) (let ((l (loop for k below 64 collect (logand (* (+ x k) 40503) #xffffff))))
                                     (logand (+ (reduce #'+ l) (* x 31)) #xffffffff))))
                   (let ((a (step1 x)) (b (step1 x)))
                     (bump (if (= w 0) :rounds0 :rounds1))
                     (unless (= a b) (bump :bad-rounds))
                     (setf x a)))
                 (sleep 0.001))))))

(defvar *cat* (sb-ext:run-program "/bin/cat" '() :input :stream :output :stream :wait nil))
(spawn "cat"
  (handler-case
      (loop for n from 1 until *stop*
            do (format (sb-ext:process-input *cat*) "~d~%" n)
               (finish-output (sb-ext:process-input *cat*))
               (let ((line (read-line (sb-ext:process-output *cat*) nil)))
                 (if (equal line (princ-to-string n)) (bump :trips) (bump :trip-errs))
                 (unless line (return)))
               (sleep 0.02))
    (error () (bump :trip-errs))))

(defun corrupt ()
  (cond ((string= *corrupt* "table") (setf (gethash 4711 *table*) 0))
        ((string= *corrupt* "ticks") (setf *ticks-stop* t))
        ((string= *corrupt* "child") (sb-ext:process-kill *cat* 9))))

(defun answer (path conn n)
  (cond ((string= path "/ping") (values "200 OK" "pong"))
        ((string= path "/mark")
         (when (= (length *marks*) 1) (corrupt))
         (let ((why (table-problem)))
           (if why
               (values "500 Internal Server Error" (format nil "~a~%" why))
               (progn (setf *marks* (append *marks* (list (counters))))
                      (values "200 OK" (format nil "request ~d on connection ~d~%" n conn))))))
        (t (values "404 Not Found" (format nil "no~%")))))

(defun crlf (s) (write-char #\Return s) (write-char #\Newline s))

(defun serve (sock conn)
  (let ((s (sb-bsd-sockets:socket-make-stream sock :input t :output t :element-type 'character
                                                   :external-format :latin-1 :buffering :full)))
    (handler-case
        (loop for n from 1
              for line = (read-line s nil)
              while line
              do (let ((path (second (uiop-split line))))
                   (loop for h = (read-line s nil) while (and h (string/= (string-right-trim '(#\Return) h) "")))
                   (multiple-value-bind (status body) (answer path conn n)
                     (format s "HTTP/1.1 ~a" status) (crlf s)
                     (format s "Content-Type: text/plain") (crlf s)
                     (format s "Content-Length: ~d" (length body)) (crlf s) (crlf s)
                     (write-string body s)
                     (finish-output s))))
      (error () nil))
    (ignore-errors (close s))))

(defun uiop-split (line)
  (loop with start = 0
        for pos = (position #\Space line :start start)
        collect (string-right-trim '(#\Return) (subseq line start pos))
        while pos do (setf start (1+ pos))))

(defvar *server* (make-instance 'sb-bsd-sockets:inet-socket :type :stream :protocol :tcp))
(setf (sb-bsd-sockets:sockopt-reuse-address *server*) t)
(sb-bsd-sockets:socket-bind *server* #(127 0 0 1) 0)
(sb-bsd-sockets:socket-listen *server* 16)
(with-open-file (f (format nil "~a/port" *dir*) :direction :output :if-exists :supersede)
  (format f "~d" (nth-value 1 (sb-bsd-sockets:socket-name *server*))))
(spawn "acceptor"
  (loop for conn from 1
        do (let ((sock (sb-bsd-sockets:socket-accept *server*)) (c conn))
             (spawn "connection" (serve sock c)))))

(sb-sys:enable-interrupt sb-unix:sigterm (lambda (&rest args) (declare (ignore args)) (setf *term* t)))
(sleep 0.2)
(format t "READY ~d~%" (sb-ext:process-pid *cat*))
(finish-output)

(loop until *term* do (sleep 0.05))
(sleep 0.3)
(let ((now (counters)) (why '()))
  (flet ((fail (fmt &rest args) (push (apply #'format nil fmt args) why)))
    (if (= (length *marks*) 2)
        (let ((m2 (second *marks*)))
          (flet ((went-on (name min)
                   (unless (> (counter now name) (+ (counter m2 name) min))
                     (fail "~(~a~) ~d, ~d at the second mark" name (counter now name) (counter m2 name)))))
            (went-on :ticks 20)
            (went-on :trips 5)
            (went-on :writes 2)
            (went-on :rounds0 0)
            (went-on :rounds1 0))
          (unless (zerop (counter now :trip-errs)) (fail "~d wrong round trips with cat" (counter now :trip-errs)))
          (unless (zerop (counter now :bad-rounds)) (fail "workers computed different results"))
          (let ((p (table-problem))) (when p (fail "~a" p)))
          (let ((keep (loop for i below 256 collect (make-array (* 1024 1024) :element-type '(unsigned-byte 8) :initial-element i))))
            (dotimes (i 1024) (make-array (* 1024 1024) :element-type '(unsigned-byte 8) :initial-element (logand i 255)))
            (sb-ext:gc :full t)
            (let ((ok (loop for v in keep for i from 0 count (and (= (aref v 0) i) (= (aref v (1- (length v))) i)))))
              (unless (= ok 256) (fail "after the collection ~d of 256 kept arrays intact" ok))))
          (let ((p (table-problem))) (when p (fail "after the collection: ~a" p))))
        (fail "~d marks taken, expected 2" (length *marks*))))
  (setf *stop* t)
  (if why
      (format t "FAIL: ~{~a~^; ~}~%" (reverse why))
      (format t "PASS~%"))
  (finish-output)
  (sb-ext:exit :code 0 :abort t))
