-- The ghc case of tests/apps/run-apps.sh: a Haskell program on GHC's threaded RTS (+RTS -N2:
-- its 1 TiB address space reservation, its capabilities' OS threads, its timerfd ticker
-- thread, its IO manager on epoll, its parallel copying collector).
--
--   ghc-app DIR +RTS -N2
--
-- A Data.Map of 100,000 entries (i -> f(i)) in an MVar; a forkIO ticker counting in an IORef
-- every 5 ms; 2 worker threads (forkIO) each chaining a checksum (every round computed twice:
-- the two must agree) and allocating; a child (cat, through System.Process pipes) that a
-- thread sends a numbered line to every 20 ms, checking each comes back; an HTTP server
-- (Network.Socket on 127.0.0.1, a free port written to DIR/port), keep-alive with no timeouts,
-- a thread per connection: "GET /mark" checks the map, records every counter and answers
-- "request N on connection C" (200), or 500 and the reasons; "GET /ping" answers "pong".
--
-- Prints "READY <pid of cat>" once all runs.
-- SIGTERM: checks two marks were taken, that the ticker, the workers and the round trips with
-- cat went on after the second with no wrong result, the map is intact, then runs
-- performMajorGC with 256 MiB more kept and 1 GiB churned, and checks the map again; prints
-- PASS or "FAIL: " and the reasons. APPS_CORRUPT=map|ticks|child breaks that state when the
-- second mark is taken (the test's check that each check can fail).
{-# LANGUAGE ScopedTypeVariables #-}
module Main (main) where

import Control.Concurrent
import Control.Exception
import Control.Monad
import qualified Data.ByteString as B
import qualified Data.ByteString.Char8 as BC
import Data.Bits
import Data.IORef
import Data.List (foldl')
import qualified Data.Map.Strict as M
import Network.Socket
import Network.Socket.ByteString (recv, sendAll)
import System.Environment
import System.Exit
import System.IO
import System.Mem (performMajorGC)
import System.Posix.Process (exitImmediately)
import System.Posix.Signals
import System.Process

entries :: Int
entries = 100000

value :: Int -> Int
value i = ((i * 2654435761) `xor` 0x5a17) .&. 0xffffffff

data Counters = Counters { cTicks, cTrips, cTripErrs, cRounds0, cRounds1, cBadRounds :: !Int }
  deriving Show

mapProblem :: MVar (M.Map Int Int) -> IO (Maybe String)
mapProblem mv = do
  m <- readMVar mv
  let bad = length [() | i <- [0 .. entries - 1], M.lookup i m /= Just (value i)]
  return $ if M.size m == entries && bad == 0 then Nothing
    else Just ("map: " ++ show (M.size m) ++ " entries, " ++ show bad ++ " wrong")

main :: IO ()
main = do
  [dir] <- getArgs
  corrupt <- maybe "" id <$> lookupEnv "APPS_CORRUPT"
  hSetBuffering stdout LineBuffering
  mapVar <- newMVar $! M.fromList [(i, value i) | i <- [0 .. entries - 1]]
  _ <- mapProblem mapVar
  performMajorGC
  stop <- newIORef False
  ticksStop <- newIORef False
  ticks <- newIORef (0 :: Int)
  trips <- newIORef (0 :: Int)
  tripErrs <- newIORef (0 :: Int)
  rounds <- mapM (const (newIORef (0 :: Int))) [0, 1 :: Int]
  badRounds <- newIORef (0 :: Int)
  let bump r = atomicModifyIORef' r (\n -> (n + 1, ()))
      untilStop extra act = let go = do s <- readIORef stop; x <- readIORef extra
                                        unless (s || x) (act >> go) in go
  _ <- forkIO $ untilStop ticksStop $ bump ticks >> threadDelay 5000
  forM_ (zip [0 :: Int ..] rounds) $ \(w, r) -> forkIO $ do
    x <- newIORef (17 + w)
    let step v = foldl' (\a k -> (a * 31 + (v + k) * 40503) .&. 0xffffffff) v [0 .. 63 :: Int]
    noExtra <- newIORef False
    untilStop noExtra $ do
      v <- readIORef x
      let a = step v
          b = step (v + 0)
      a `seq` b `seq` bump r
      when (a /= b) (bump badRounds)
      writeIORef x a
      threadDelay 1000
  (Just catIn, Just catOut, _, ph) <- createProcess (proc "/bin/cat" []) { std_in = CreatePipe, std_out = CreatePipe }
  hSetBuffering catIn LineBuffering
  catPid <- maybe 0 fromIntegral <$> getPid ph :: IO Int
  _ <- forkIO $ handle (\(_ :: SomeException) -> bump tripErrs) $ do
    noExtra <- newIORef False
    n <- newIORef (1 :: Int)
    untilStop noExtra $ do
      k <- readIORef n
      hPutStrLn catIn (show k)
      line <- hGetLine catOut
      if line == show k then bump trips else bump tripErrs
      writeIORef n (k + 1)
      threadDelay 20000
  marks <- newMVar ([] :: [Counters])
  let counters = Counters <$> readIORef ticks <*> readIORef trips <*> readIORef tripErrs
                          <*> readIORef (rounds !! 0) <*> readIORef (rounds !! 1) <*> readIORef badRounds
      doCorrupt = case corrupt of
        "map" -> modifyMVar_ mapVar (return . M.insert 4711 0)
        "ticks" -> writeIORef ticksStop True
        "child" -> terminateProcess ph
        _ -> return ()
      answer path conn n = case path of
        "/ping" -> return ("200 OK", "pong")
        "/mark" -> do
          ms <- readMVar marks
          when (length ms == 1) doCorrupt
          why <- mapProblem mapVar
          case why of
            Just w -> return ("500 Internal Server Error", w ++ "\n")
            Nothing -> do
              c <- counters
              modifyMVar_ marks (return . (++ [c]))
              return ("200 OK", "request " ++ show n ++ " on connection " ++ show conn ++ "\n")
        _ -> return ("404 Not Found", "no\n")
      serve sock conn = do
        let loop buf n = case B.breakSubstring (BC.pack "\r\n\r\n") buf of
              (hd, rest) | not (B.null rest) -> do
                let path = case BC.words (BC.takeWhile (/= '\r') hd) of
                      (_ : p : _) -> BC.unpack p
                      _ -> ""
                (status, body) <- answer path conn n
                sendAll sock $ BC.pack $ "HTTP/1.1 " ++ status ++ "\r\nContent-Type: text/plain\r\nContent-Length: "
                  ++ show (length body) ++ "\r\n\r\n" ++ body
                loop (B.drop 4 rest) (n + 1)
              _ -> do
                more <- recv sock 4096
                unless (B.null more) $ loop (buf <> more) n
        loop B.empty (1 :: Int) `finally` close sock
  server <- socket AF_INET Stream defaultProtocol
  setSocketOption server ReuseAddr 1
  bind server (SockAddrInet 0 (tupleToHostAddress (127, 0, 0, 1)))
  listen server 16
  port <- socketPort server
  writeFile (dir ++ "/port") (show port)
  _ <- forkIO $ forM_ [1 :: Int ..] $ \conn -> do
    (sock, _) <- accept server
    forkIO (serve sock conn)
  term <- newEmptyMVar
  _ <- installHandler sigTERM (Catch (void (tryPutMVar term ()))) Nothing
  threadDelay 200000
  putStrLn ("READY " ++ show catPid)
  takeMVar term
  threadDelay 300000
  now <- counters
  ms <- readMVar marks
  why <- case ms of
    [_, m2] -> do
      let wentOn name f minimum' = [name ++ " " ++ show (f now) ++ ", " ++ show (f m2) ++ " at the second mark"
                                   | f now <= f m2 + minimum']
          checks = wentOn "ticks" cTicks 20 ++ wentOn "cat round trips" cTrips 5
            ++ wentOn "worker 0 rounds" cRounds0 0 ++ wentOn "worker 1 rounds" cRounds1 0
            ++ [show (cTripErrs now) ++ " wrong round trips with cat" | cTripErrs now /= 0]
            ++ ["workers computed different results" | cBadRounds now /= 0]
      p1 <- mapProblem mapVar
      keep <- forM [0 .. 255 :: Int] $ \i -> evaluate (B.replicate (1024 * 1024) (fromIntegral i))
      forM_ [0 .. 1023 :: Int] $ \i -> evaluate (B.length (B.replicate (1024 * 1024) (fromIntegral i)))
      -- and 1 GiB of small boxed objects through the copying collector
      forM_ [0 .. 63 :: Int] $ \i -> evaluate (M.size (M.fromList [(k, k + i) | k <- [0 .. 100000 :: Int]]))
      performMajorGC
      let intact = length [() | (i, b) <- zip [0 ..] keep, B.length b == 1024 * 1024, B.head b == fromIntegral i,
                                B.last b == fromIntegral (i :: Int)]
      p2 <- mapProblem mapVar
      return $ checks ++ maybe [] pure p1
        ++ [show intact ++ " of 256 kept buffers intact after the collection" | intact /= 256]
        ++ maybe [] (pure . ("after the collection: " ++)) p2
    _ -> return [show (length ms) ++ " marks taken, expected 2"]
  writeIORef stop True
  putStrLn (if null why then "PASS" else "FAIL: " ++ foldr1 (\a b -> a ++ "; " ++ b) why)
  hFlush stdout
  exitImmediately ExitSuccess
